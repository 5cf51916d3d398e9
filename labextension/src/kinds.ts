/**
 * Which kinds the panel's "New task" form offers. The server states what a kind needs
 * (`GET kinds`); the browser reads that instead of keeping its own list of kinds.
 */
import type { IKind } from './types';

/**
 * The kinds a browser can start: not those only a kernel can launch, nor those whose
 * tasks carry input bytes only a kernel makes (`%%bgtask`, `submit()`).
 */
export function creatableKinds(kinds: IKind[]): IKind[] {
  return kinds.filter(kind => !kind.needs_kernel && !kind.needs_payload);
}

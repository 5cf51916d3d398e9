/**
 * How a failure is shown to the user: one readable line, whatever was thrown. Its own
 * module so views import it without importing the model.
 */

/** A readable line for an error of any shape. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

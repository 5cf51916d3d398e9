/** The panel's link from a Dask task's row to its worker's page on the Dask dashboard. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { shortAddress, workerPage } from '../src/dask';

describe('dask worker links', () => {
  test('the worker page sits beside the dashboard status page', () => {
    assert.equal(
      workerPage('http://10.0.0.2:8787/status', 'tcp://10.0.0.5:40001'),
      'http://10.0.0.2:8787/info/worker/tcp%3A%2F%2F10.0.0.5%3A40001.html'
    );
    assert.equal(
      workerPage(
        'https://hub.example.org/user/ann/proxy/8787/status/',
        'tls://w:1'
      ),
      'https://hub.example.org/user/ann/proxy/8787/info/worker/tls%3A%2F%2Fw%3A1.html'
    );
  });

  test('a row shows the address without its scheme', () => {
    assert.equal(shortAddress('tcp://10.0.0.5:40001'), '10.0.0.5:40001');
    assert.equal(shortAddress('inproc://x/1'), 'x/1');
  });
});

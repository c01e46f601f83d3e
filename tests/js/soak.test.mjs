// soak.test.mjs — the 30-second version of bench/soak.mjs (issue 19 §2) on the tiny model: 16 clients mixing
// OpenAI and ollama routes, streaming and not, multi-turn chats, abandoned streams, invalid requests and
// prompts that fill the context. Nothing but 429/503 may fail; afterwards no request is in flight, every
// slot is free, the server holds no more descriptors than before, and its RSS did not grow by more than 5 %
// between the middle and the end of the load. (The 10-minute run with 64 clients on the 0.5B shape:
// `node bench/soak.mjs`, figures in docs/SCALING.md.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak, parseArgs } from '../../bench/soak.mjs';

test('30 s soak: only 429/503 fail, slots and descriptors come back, RSS flat', async () => {
  const o = parseArgs(['--shape', 'tiny', '--type', 'f16', '--clients', '16', '--duration', '30', '--ctx', '512',
                       '--parallel', '4', '--max-queue', '8', '--max-tokens', '32', '--long', '0.05', '--request-timeout', '120']);
  const lines = [];
  const r = await runSoak(o, (s) => { lines.push(s); console.log(s); });
  assert.deepEqual(r.errors, {}, 'errors other than 429/503');
  assert.ok(r.requests_completed > 20, `requests completed: ${r.requests_completed}`);
  assert.ok(r.outcomes.disconnected > 0, 'some streams were abandoned');
  assert.ok(r.outcomes.invalid_refused > 0, 'some invalid requests were refused');
  assert.ok(Object.keys(r.outcomes).some((k) => k.startsWith('long:')), 'a prompt near the context limit completed');
  assert.ok(r.ttft_ms.n > 0 && r.ttft_ms.p99 >= r.ttft_ms.p50);
  assert.equal(r.end_gauges.inflight, 0);
  assert.equal(r.end_gauges.slots_busy, 0);
  assert.equal(r.end_gauges.queue, 0);
  assert.ok(r.fds.end <= r.fds.start, `descriptors: ${r.fds.start} at start, ${r.fds.end} at the end`);
  assert.ok(r.goals.rss_end_within_5pct_of_middle, `RSS middle ${r.rss_mib.middle} MiB, end ${r.rss_mib.end} MiB`);
  assert.ok(r.ok);
});

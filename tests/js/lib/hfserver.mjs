// hfserver.mjs — a local stand-in for the model hubs, on 127.0.0.1 only, for the pull tests.
//
// Hugging Face layout (what HF_ENDPOINT points at):
//   GET  /api/models/<owner>/<repo>/tree/main        file list: [{type, path, size, oid, lfs: {oid: sha256, size}}]
//   HEAD/GET /<owner>/<repo>/resolve/main/<file>     302 to /cdn/… with X-Linked-Etag / X-Linked-Size, like the hub
//   GET  /cdn/<owner>/<repo>/<file>                  the bytes, with Range support (206 + Content-Range)
// ModelScope layout (what MODELSCOPE_ENDPOINT points at):
//   GET  /api/v1/models/<owner>/<repo>/repo/files?Revision=master&Recursive=true
//                                                    {Code: 200, Data: {Files: [{Name, Path, Type: 'blob', Size, Sha256}]}}
//   GET  /models/<owner>/<repo>/resolve/master/<file> the bytes (Range support)
// Plain server:  GET /plain/<file>                   the bytes, no checksum headers
//
// Faults for the tests (fields of the returned object, changeable between runs):
//   cutOnce: Set of file names whose next body is cut halfway (socket destroyed), once each
//   badSha: advertise a wrong sha256 everywhere
//   noApi: the list APIs answer 404 (a mirror without them)
//   stallOnce: Set of file names whose next body stops halfway with the connection left open
//   slow: bodies trickle at about 1.3 MB/s
// Every request is recorded in `requests` as {method, url, range}.
import http from 'node:http';
import crypto from 'node:crypto';

export function sha256(buf) { return crypto.createHash('sha256').update(buf).digest('hex'); }

export async function startHubServer(repos = {}) {
  // repos: { 'Owner/Repo': { 'file.gguf': Buffer } }
  const hub = { repos, requests: [], cutOnce: new Set(), stallOnce: new Set(), slow: false, badSha: false, noApi: false, url: '', close: null };
  const shaOf = (buf) => (hub.badSha ? '0'.repeat(64) : sha256(buf));
  const find = (repo, file) => hub.repos[repo]?.[file];

  function sendBytes(req, res, name, buf, extra = {}) {
    const range = req.headers.range;
    let start = 0;
    let end = buf.length - 1;
    let status = 200;
    const headers = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...extra };
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= buf.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${buf.length}` });
        return res.end();
      }
      start = Number(m[1]);
      if (m[2]) end = Math.min(end, Number(m[2]));
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${buf.length}`;
    }
    headers['Content-Length'] = String(end - start + 1);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    const body = buf.subarray(start, end + 1);
    if (hub.stallOnce.has(name)) { // send half, then nothing (the connection stays open)
      hub.stallOnce.delete(name);
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    if (hub.slow) { // 64 KiB every 50 ms
      let off = 0;
      const tick = () => {
        if (res.destroyed) return;
        if (off >= body.length) return res.end();
        res.write(body.subarray(off, off + 65536));
        off += 65536;
        setTimeout(tick, 50);
      };
      return tick();
    }
    if (hub.cutOnce.has(name)) {
      hub.cutOnce.delete(name);
      const half = Math.floor(body.length / 2);
      res.write(body.subarray(0, half), () => setTimeout(() => res.socket.destroy(), 50));
      return;
    }
    res.end(body);
  }

  const notFound = (res, msg = 'Entry not found') => {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: msg }));
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const p = decodeURIComponent(u.pathname);
    hub.requests.push({ method: req.method, url: req.url, range: req.headers.range || null });
    let m;
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(p))) {
      if (hub.noApi || !hub.repos[m[1]]) return notFound(res, 'Repository not found');
      const list = Object.entries(hub.repos[m[1]]).map(([path, buf]) => ({
        type: 'file', oid: crypto.createHash('sha1').update(buf).digest('hex'), size: buf.length, path,
        lfs: { oid: shaOf(buf), size: buf.length, pointerSize: 134 },
      }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify(list));
    }
    if ((m = /^\/api\/v1\/models\/([^/]+\/[^/]+)\/repo\/files$/.exec(p))) {
      if (hub.noApi || !hub.repos[m[1]]) return notFound(res, 'model not found');
      const files = Object.entries(hub.repos[m[1]]).map(([path, buf]) => ({
        Name: path, Path: path, Type: 'blob', Size: buf.length, Sha256: shaOf(buf), Revision: 'abc',
      }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ Code: 200, Data: { Files: files }, Success: true }));
    }
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(p))) {
      const buf = find(m[1], m[2]);
      if (!buf) return notFound(res);
      // like the hub: LFS files redirect to a CDN; the redirect carries the sha256 and size
      res.writeHead(302, {
        Location: `/cdn/${m[1]}/${encodeURIComponent(m[2])}?sig=1`,
        'X-Linked-Etag': `"${shaOf(buf)}"`, 'X-Linked-Size': String(buf.length),
        ETag: `"${shaOf(buf)}"`, 'Content-Length': '0',
      });
      return res.end();
    }
    if ((m = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(p))) {
      const buf = find(m[1], m[2]);
      if (!buf) return notFound(res);
      // the real CDN signs its URLs for GET only: a HEAD there is refused
      if (req.method === 'HEAD') { res.writeHead(403); return res.end(); }
      return sendBytes(req, res, m[2], buf);
    }
    if ((m = /^\/models\/([^/]+\/[^/]+)\/resolve\/master\/(.+)$/.exec(p))) {
      const buf = find(m[1], m[2]);
      if (!buf) return notFound(res);
      return sendBytes(req, res, m[2], buf);
    }
    if ((m = /^\/plain\/(.+)$/.exec(p))) {
      for (const files of Object.values(hub.repos)) if (files[m[1]]) return sendBytes(req, res, m[1], files[m[1]]);
      return notFound(res);
    }
    notFound(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${server.address().port}`;
  hub.close = () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); });
  return hub;
}

// A port on 127.0.0.1 that nothing listens on (bound then released).
export async function closedPort() {
  const s = http.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// duet's folder page, uploads: three at a time, resumable (IETF draft), the SHA-256
// computed in a worker on the way; their panel; picking and dropping files and folders.
// The page's classic deferred scripts run in order (common.js, listing.js, uploads.js, app.js)
// and share their top-level names.
'use strict';

// ---- uploads: three at a time, resumable, the SHA-256 computed in a worker

const uploads = [];
let running = 0;
let transferred = 0; // bytes sent, for the speed
const samples = []; // [ms, transferred]
const retryable = (code) =>
  code === 408 || code === 429 || (code >= 500 && code !== 501 && code !== 507);

// One upload's worker; its answers come in the order of the messages.
function hasher() {
  const worker = new Worker(body.dataset.worker);
  const waiting = [];
  let broken = null;
  const stop = (err) => {
    broken = err;
    worker.terminate();
    waiting.splice(0).forEach((w) => w.reject(err));
  };
  worker.onmessage = (e) => waiting.shift()?.resolve(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    stop(new Error('the hashing worker failed'));
  };
  const ask = (msg, transfer) => {
    const p = broken ? Promise.reject(broken) : new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      worker.postMessage(msg, transfer || []);
    });
    p.catch(() => {}); // not awaited when the upload ends first
    return p;
  };
  return {
    update: (buf) => ask({ type: 'update', buf }, [buf]),
    final: () => ask({ type: 'final' }),
    stop: () => stop(new Error('stopped')),
  };
}

function setState(u, state, note = '') {
  u.state = state;
  u.note = note;
  drawUpload(u);
}
function forget(u) {
  u.url = null;
  localStorage.removeItem(u.key);
}

// An upload's request: network failures and timeouts are retried; pause or cancel (signal)
// and a refused token are not.
async function step(method, url, headers, signal) {
  const timeout = AbortSignal.timeout(STALL);
  try {
    return await api(method, url, {
      headers: { ...INTEROP, ...headers },
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (err) {
    if (signal.aborted || err instanceof NeedToken) throw err;
    throw fault(timeout.aborted ? 'no answer in time' : 'the connection failed', true);
  }
}

// The server's offset, or null when the upload is gone.
async function serverOffset(u, signal) {
  const res = await step('HEAD', u.url, {}, signal);
  const offset = res.headers.get('Upload-Offset');
  if (res.status === 404 || res.status === 410) return null;
  if (res.ok && offset !== null) return Number(offset);
  throw fault(`the server answered ${res.status}`, retryable(res.status));
}

// POST to the destination: the upload's URL, kept for a reload; a zero-byte file is stored.
async function create(u, signal) {
  const empty = u.size === 0;
  const res = await step('POST', fileUrl(u.path), {
    'Upload-Complete': empty ? '?1' : '?0',
    'Upload-Length': String(u.size),
    ...(empty && { 'Repr-Digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:' }),
  }, signal);
  const loc = res.headers.get('Location');
  if (empty && res.ok) return 0;
  if (res.status !== 201 || !loc) throw fault(sentence(res), retryable(res.status));
  const url = new URL(loc, location.href);
  u.url = url.pathname + url.search;
  localStorage.setItem(u.key, u.url);
  return Number(res.headers.get('Upload-Offset')) || 0;
}

// Feeds the worker the file up to end, in order and once; bytes below from (on the server
// after a reload) are hashed, not sent. At the end, the digest.
async function hashTo(u, from, end, signal) {
  while (u.hashedTo < end) {
    const stop = u.hashedTo < from ? Math.min(from, u.hashedTo + PIECE) : end;
    if (u.hashedTo < from) setState(u, 'hashing');
    const buf = await u.file.slice(u.hashedTo, stop).arrayBuffer().catch(() => {
      throw fault('the file could not be read; it may have changed');
    });
    await u.hashing; // at most one piece waits in the worker
    signal.throwIfAborted();
    u.hashing = u.hasher.update(buf); // and, at once, hashedTo says what the worker got
    u.hashedTo = stop;
  }
  if (end === u.size && !u.digest) {
    setState(u, 'hashing');
    u.digest = await u.hasher.final();
    signal.throwIfAborted();
  }
  if (u.state !== 'uploading') setState(u, 'uploading');
}

// PATCH [off, end) by XMLHttpRequest, for its upload progress: the next offset, 'done', or
// 'gone' (to be created again). A 401 is retried, and the retry's HEAD asks the token.
function append(u, off, end, signal) {
  const last = end === u.size;
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    let seen = 0;
    let idle = 0;
    const timer = setInterval(() => { if ((idle += 1000) >= STALL) x.abort(); }, 1000);
    const abort = () => x.abort();
    signal.addEventListener('abort', abort);
    const finish = (fn, value) => {
      clearInterval(timer);
      signal.removeEventListener('abort', abort);
      fn(value);
    };
    x.open('PATCH', u.url);
    const headers = {
      ...INTEROP,
      'Content-Type': 'application/partial-upload',
      'Upload-Offset': off,
      'Upload-Complete': last ? '?1' : '?0',
      ...(last && { 'Repr-Digest': `sha-256=:${u.digest.base64}:` }),
      ...(token && { Authorization: 'Bearer ' + token }),
    };
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => {
      idle = 0;
      transferred += e.loaded - seen;
      seen = e.loaded;
      u.sent = off + e.loaded;
      drawSoon(u);
    };
    x.onerror = () => finish(reject, fault('the connection failed', true));
    x.onabort = () => finish(reject, signal.aborted ? signal.reason
      : fault(idle >= STALL ? 'no answer in time' : 'the connection failed', true));
    x.onload = () => {
      const s = x.status;
      const offset = x.getResponseHeader('Upload-Offset');
      if (s === 200 || s === 201) return finish(resolve, 'done');
      if (s === 204) return finish(resolve, offset === null ? end : Number(offset));
      if (s === 409 && offset !== null) return finish(resolve, Number(offset)); // server's
      if (s === 404) return finish(resolve, 'gone');
      if (s === 400 && last) {
        forget(u); // the server dropped it
        return finish(reject, fault('the file changed or was corrupted on the way; ' +
          'nothing was stored'));
      }
      const again = s === 401 || s === 409 || retryable(s); // 409: another append runs
      finish(reject, fault(sentence({ text: x.responseText, status: s }), again));
    };
    x.send(u.file.slice(off, end));
  });
}

// Finds the upload (saved before a page reload) or creates it; appends until it is stored.
async function send(u, signal) {
  for (;;) {
    u.url ??= localStorage.getItem(u.key);
    let offset = u.url ? await serverOffset(u, signal) : null;
    if (offset === null) {
      forget(u);
      offset = await create(u, signal);
      if (!u.url) return; // a zero-byte file
    }
    for (;;) {
      signal.throwIfAborted();
      const end = Math.min(offset + PIECE, u.size);
      await hashTo(u, offset, end, signal);
      u.sent = offset;
      const next = await append(u, offset, end, signal);
      if (next === 'done') return;
      if (next === 'gone') break;
      offset = next;
      u.tries = 0;
    }
    forget(u); // gone: created again
  }
}

async function run(u) {
  const ctl = (u.ctl = new AbortController());
  const { signal } = ctl;
  setState(u, 'uploading');
  if (!u.hasher && u.size) u.hasher = hasher();
  try {
    for (;;) {
      try {
        await send(u, signal);
        break;
      } catch (err) {
        if (!err.retry) throw err;
        // 1, 2, 4 ... 10 s, while the page is open; then the offset is asked again.
        const until = Date.now() + Math.min(1000 * 2 ** u.tries++, 10000);
        u.error = err.message;
        while (Date.now() < until) {
          setState(u, 'retrying', `retrying in ${Math.ceil((until - Date.now()) / 1000)}s`);
          await sleep(Math.min(1000, until - Date.now()), signal);
        }
      }
    }
    u.sent = u.size;
    u.error = '';
    settle(u, 'done');
    refreshSoon(300);
  } catch (err) {
    if (signal.aborted) return; // paused or cancelled: already shown
    u.error = err.message;
    // The partial upload is freed (not without a token: that would ask again).
    if (u.url && !(err instanceof NeedToken)) api('DELETE', u.url).catch(() => {});
    settle(u, 'failed', 'failed: ' + err.message);
    say(`${u.rel}: ${err.message}`);
  }
}

// A final state: the saved URL and the worker are done with.
function settle(u, state, note) {
  forget(u);
  u.hasher?.stop();
  u.hasher = null;
  setState(u, state, note);
}

function pump() {
  while (running < 3) { // three at a time
    const u = uploads.find((x) => x.state === 'queued');
    if (!u) break;
    running++;
    run(u).finally(() => {
      running--;
      pump();
      const count = (state) => uploads.filter((x) => x.state === state).length;
      const failed = uploads.filter((x) => x.state === 'failed');
      const last = failed[failed.length - 1]; // its sentence stays in the summary
      if (!running && !count('queued') && count('done') + failed.length) {
        say(`Uploads finished: ${count('done')} stored` +
          (last ? `, ${failed.length} failed (${last.rel}: ${last.error})` : '.'));
      }
    });
  }
  drawTotal();
}

function pauseOrResume(u) {
  if (u.state === 'paused') {
    setState(u, 'queued');
    pump();
  } else if (!FINAL.includes(u.state)) {
    const wasRunning = u.state !== 'queued';
    setState(u, 'paused');
    if (wasRunning) u.ctl.abort();
  }
}

function cancel(u) {
  if (FINAL.includes(u.state)) return;
  u.ctl?.abort();
  if (u.url) api('DELETE', u.url).catch(() => {});
  settle(u, 'cancelled');
}

function addFiles(items) {
  const added = [];
  for (const { file, rel } of items) {
    const path = folder + rel;
    // The key of its URL in localStorage, for a page reload or a browser restart.
    const key = `duet-upload:${path}|${file.size}|${file.lastModified}`;
    if (uploads.some((u) => u.key === key && !FINAL.includes(u.state))) continue;
    const u = { file, rel, path, key, size: file.size, state: 'queued', note: '', sent: 0,
      error: '', url: null, hasher: null, hashedTo: 0, hashing: null, digest: null, tries: 0 };
    addUploadRow(u);
    uploads.push(u);
    added.push(u);
  }
  if (!added.length) return;
  $('#uploads').hidden = false;
  say(added.length > 1 ? `Uploading ${added.length} files.` : `Uploading ${added[0].rel}.`);
  pump();
}

// ---- the uploads panel

function addUploadRow(u) {
  const li = document.createElement('li');
  const r = esc(u.rel);
  li.className = 'upload';
  li.dataset.path = u.path;
  li.innerHTML = `<span class="up-path">${r}</span><progress max="100" value="0" ` +
    `aria-label="Upload of ${r}"></progress><span class="up-pct"></span><span ` +
    'class="up-state"></span><span class="up-buttons"><button type="button"></button> ' +
    `<button type="button" aria-label="Cancel ${r}">Cancel</button></span>`;
  const [pause, stop] = li.querySelectorAll('button');
  pause.onclick = () => pauseOrResume(u);
  stop.onclick = () => cancel(u);
  u.row = li;
  $('#upload-list').append(li);
  drawUpload(u);
}

function drawUpload(u) {
  const li = u.row;
  const pct = Math.floor(u.size ? (u.sent / u.size) * 100 : u.state === 'done' ? 100 : 0);
  const pause = li.querySelector('button');
  const buttons = pause.parentNode;
  li.dataset.state = u.state;
  li.querySelector('progress').value = pct;
  li.querySelector('.up-pct').textContent = pct + '%';
  li.querySelector('.up-state').textContent = u.note || u.state;
  pause.textContent = u.state === 'paused' ? 'Resume' : 'Pause';
  pause.setAttribute('aria-label', `${pause.textContent} ${u.rel}`);
  if (FINAL.includes(u.state) && !buttons.hidden) {
    if (buttons.contains(document.activeElement)) $('#uploads h2').focus();
    buttons.hidden = true;
  }
  drawSoon();
}

// Progress comes often: drawn at most every 200 ms.
const dirty = new Set();
let drawTimer = 0;
function drawSoon(u) {
  if (u) dirty.add(u);
  drawTimer ||= setTimeout(() => {
    drawTimer = 0;
    const now = [...dirty];
    dirty.clear();
    now.forEach(drawUpload);
    drawTotal();
  }, 200);
}

function drawTotal() {
  let size = 0;
  let sent = 0;
  for (const u of uploads.filter((x) => x.state !== 'cancelled')) {
    size += u.size;
    sent += u.state === 'done' ? u.size : Math.min(u.sent, u.size);
  }
  // The speed: what went up over the last 5 seconds.
  const now = performance.now();
  samples.push([now, transferred]);
  while (samples.length > 2 && now - samples[1][0] > 5000) samples.shift();
  const [t0, b0] = samples[0];
  const speed = now - t0 > 500 ? ((transferred - b0) * 1000) / (now - t0) : 0;
  const pct = size ? Math.floor((sent / size) * 100) : 100;
  let text = `${pct}% of ${humanSize(size)}`;
  if (speed > 0 && uploads.some((u) => !FINAL.includes(u.state) && u.state !== 'paused')) {
    const left = Math.ceil((size - sent) / speed);
    text += ` · ${(speed / 1e6).toFixed(1)} MB/s · ` +
      (left < 60 ? `${left} s` : `${Math.floor(left / 60)} min ${left % 60} s`) + ' left';
  }
  $('#total-progress').value = pct;
  $('#total-text').textContent = text;
  $('#clear-finished').hidden = !uploads.some((u) => FINAL.includes(u.state));
}

function clearFinished() {
  for (const u of uploads.filter((x) => FINAL.includes(x.state))) {
    u.row.remove();
    uploads.splice(uploads.indexOf(u), 1);
  }
  $('#uploads').hidden = !uploads.length;
  if (uploads.length) $('#uploads h2').focus();
  drawTotal();
}

// ---- picking and dropping

// A dropped file or folder, its tree kept as relative paths (folders in `dirs`).
async function walk(entry, prefix, out, dirs) {
  if (entry.isFile) {
    const file = await new Promise((ok, no) => entry.file(ok, no));
    out.push({ file, rel: prefix + entry.name });
  } else if (entry.isDirectory) {
    const path = prefix + entry.name;
    dirs.push(path);
    const reader = entry.createReader();
    const batch = () => new Promise((ok, no) => reader.readEntries(ok, no));
    // readEntries gives a folder in batches, then an empty one.
    for (let children; (children = await batch()).length;) {
      for (const child of children) await walk(child, path + '/', out, dirs);
    }
  }
}

// Dropped folders with no file anywhere inside are made (MKCOL), parents first: an upload makes
// the folders of its own path, but nothing would make these.
async function makeEmptyFolders(dirs, files) {
  const holding = new Set(); // every folder with a file somewhere inside
  for (const { rel } of files) {
    for (let i = rel.indexOf('/'); i > 0; i = rel.indexOf('/', i + 1)) holding.add(rel.slice(0, i));
  }
  const empty = dirs.filter((d) => !holding.has(d));
  const made = new Set();
  for (const d of empty) {
    const parts = d.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const path = folder + parts.slice(0, i).join('/');
      if (made.has(path)) continue;
      made.add(path);
      const res = await api('MKCOL', fileUrl(path, true));
      // 405: it is there already (an upload of this drop may have made it).
      if (!res.ok && res.status !== 405 && i === parts.length) say(`${d}: ${sentence(res)}`);
    }
  }
  if (empty.length) refreshSoon(0);
}

async function dropped(dt) {
  // The entries must be taken during the drop event, before any await.
  const items = Array.from(dt.items || [], (item) =>
    item.kind === 'file' && (item.webkitGetAsEntry?.() || item.getAsFile())).filter(Boolean);
  if (!items.length) items.push(...Array.from(dt.files || []));
  const out = [];
  const dirs = [];
  try {
    for (const x of items) {
      if (x instanceof File) out.push({ file: x, rel: x.name });
      else await walk(x, '', out, dirs);
    }
  } catch (err) {
    say('Some dropped files could not be read: ' + err.message);
  }
  addFiles(out);
  await makeEmptyFolders(dirs, out).catch((err) => say('A dropped folder was not made: ' + err.message));
}

function setupDrop() {
  let depth = 0;
  const files = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
  const on = (type, fn) => document.addEventListener(type, (e) => {
    if (!files(e)) return;
    e.preventDefault();
    fn(e);
    body.classList.toggle('dragging', depth > 0); // the outline while dragging
  });
  on('dragenter', () => depth++);
  on('dragover', (e) => { e.dataTransfer.dropEffect = 'copy'; });
  on('dragleave', () => { depth = Math.max(0, depth - 1); });
  on('drop', (e) => {
    depth = 0;
    dropped(e.dataTransfer);
  });
}

// duet's folder page, what every part uses: constants, small helpers, the status line, requests
// with the token, and dialogs.
// The page's classic deferred scripts run in order (common.js, listing.js, uploads.js, app.js)
// and share their top-level names.
'use strict';

const body = document.body;
const folder = body.dataset.path || ''; // decoded, from the store root: "" or "a/b/"
const PIECE = 8 << 20; // bytes per PATCH
const STALL = 30000; // ms without progress: the request is dropped and retried
const INTEROP = { 'Upload-Draft-Interop-Version': '6' };
const FINAL = ['done', 'failed', 'cancelled'];

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const enc = (path) => path.split('/').map(encodeURIComponent).join('/'); // slashes kept
const fileUrl = (path, dir) => '/files/' + enc(path) + (dir ? '/' : '');
const here = fileUrl(folder);
// Resolves after ms; rejects when signal aborts.
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
  });
}

// As the server writes it: "900 B", "1.2 KiB", "12 KiB".
function humanSize(n) {
  let i = 0;
  for (; n >= 1024 && i < 5; i++) n /= 1024;
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'][i];
}
const pad = (n) => String(n).padStart(2, '0');
function localTime(sec) {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const statusLine = $('#status');
function say(text) {
  // The same sentence again: emptied first, or screen readers stay silent.
  const again = statusLine.textContent === text;
  statusLine.textContent = again ? '' : text;
  if (again) setTimeout(() => { statusLine.textContent = text; }, 100);
}
// An error answer's sentence: {"error": ...}, or a problem's "title".
function sentence(res) {
  try {
    const j = JSON.parse(res.text);
    if (j.error || j.title) return String(j.error || j.title);
  } catch { /* not JSON */ }
  return `The server answered ${res.status}.`;
}
const explain = (err) => (err instanceof TypeError ? 'The server is unreachable.' : err.message);
const fault = (message, retry = false) => Object.assign(new Error(message), { retry });

// ---- the token and requests

let token = sessionStorage.getItem('duet-token') || '';
let asking = null; // the open question, for every request that meets a 401 meanwhile
class NeedToken extends Error {}

function askToken(wrong) {
  asking ??= question({
    title: 'Token needed',
    text: wrong ? 'That token is wrong. Enter the token again.'
      : 'This server needs a token to show and change its files.',
    input: { label: 'Token', type: 'password' },
    ok: 'Use this token',
  }).then((value) => {
    asking = null;
    if (!value) throw new NeedToken('A token is needed: reload the page to enter it.');
    token = value.trim();
    sessionStorage.setItem('duet-token', token);
  });
  return asking;
}

// fetch with the token; a 401 asks for it and tries again. Gives {status, ok, headers, text}:
// the body is read (an unread one shows as an aborted request), except a stream's.
async function api(method, url, { headers, body: data, signal, stream } = {}) {
  for (;;) {
    const sent = token;
    const auth = sent ? { Authorization: 'Bearer ' + sent } : {};
    headers = { ...headers, ...auth };
    const res = await fetch(url, { method, body: data, signal, headers });
    if (res.status === 401) {
      await res.text();
      if (token === sent) await askToken(sent !== '');
    } else if (stream && res.ok) {
      return res;
    } else {
      return { status: res.status, ok: res.ok, headers: res.headers, text: await res.text() };
    }
  }
}

// A modal question (showModal keeps focus inside, Escape closes): on OK the input's value,
// or '' without input; null on Cancel or Escape.
let dialogs = 0;
function question({ title, text, input, ok, danger }) {
  const id = 'q' + ++dialogs;
  const d = document.createElement('dialog');
  d.setAttribute('aria-labelledby', id + 't');
  if (text) d.setAttribute('aria-describedby', id + 'd');
  d.innerHTML = `<form method="dialog"><h2 id="${id}t">${esc(title)}</h2>` +
    (text ? `<p id="${id}d">${esc(text)}</p>` : '') +
    (input ? `<p><label for="${id}i">${esc(input.label)}</label><input id="${id}i" ` +
      `type="${input.type || 'text'}" autocomplete="off" spellcheck="false" required></p>` : '') +
    `<p class="dialog-buttons"><button value="ok" class="${danger ? 'danger' : 'primary'}">` +
    `${esc(ok)}</button> <button type="button">Cancel</button></p></form>`;
  const field = d.querySelector('input');
  const cancel = d.querySelector('[type=button]');
  if (field) field.value = input.value || '';
  const opener = document.activeElement;
  return new Promise((resolve) => {
    cancel.onclick = () => d.close();
    d.onclose = () => {
      d.remove();
      if (opener?.isConnected) opener.focus();
      resolve(d.returnValue === 'ok' ? (field ? field.value : '') : null);
    };
    body.append(d);
    d.showModal();
    if (field) field.select();
    else if (danger) cancel.focus(); // a destructive question starts on Cancel
  });
}

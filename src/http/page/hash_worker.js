// duet: one upload's SHA-256, fed piece by piece (WebCrypto has no incremental digest). A classic
// Web Worker: {type: 'update', buf} -> {type: 'updated', bytes}; {type: 'final'} -> {type:
// 'digest', base64, hex}. In node it exports Sha256 for tests.
'use strict';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
// V8 optimizes a function called often sooner than one long loop: blocks go in calls of 8 KiB
// (else 30 MB/s over the first 50 MiB, measured; then 220 MB/s).
const STRIDE = 8192;

class Sha256 {
  constructor() {
    this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Int32Array(64);
    this.tail = new Uint8Array(64); // a block begun
    this.tailLen = 0;
    this.bytes = 0;
  }

  update(data) { // a Uint8Array or an ArrayBuffer
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    const len = bytes.length;
    let pos = 0;
    this.bytes += len;
    if (this.tailLen > 0) {
      pos = Math.min(64 - this.tailLen, len);
      this.tail.set(bytes.subarray(0, pos), this.tailLen);
      this.tailLen += pos;
      if (this.tailLen < 64) return this;
      this.blocks(new DataView(this.tail.buffer), 0, 64);
      this.tailLen = 0;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, len);
    for (const stop = pos + ((len - pos) & ~63); pos < stop; pos = Math.min(pos + STRIDE, stop)) {
      this.blocks(view, pos, Math.min(pos + STRIDE, stop));
    }
    this.tail.set(bytes.subarray(pos), 0);
    this.tailLen = len - pos;
    return this;
  }

  // The 32-byte digest; the object is spent afterwards.
  digest() {
    const pad = new Uint8Array(this.tailLen < 56 ? 64 - this.tailLen : 128 - this.tailLen);
    const v = new DataView(pad.buffer);
    pad[0] = 0x80;
    v.setUint32(pad.length - 8, Math.floor(this.bytes / 0x20000000)); // bits, 64-bit big-endian
    v.setUint32(pad.length - 4, (this.bytes * 8) >>> 0);
    this.update(pad);
    const out = new Uint8Array(32);
    this.h.forEach((x, i) => new DataView(out.buffer).setInt32(i * 4, x));
    return out;
  }

  // The 64-byte blocks of view in [from, to): locals and Int32 math only, the message schedule
  // inside the rounds (faster in V8 than a loop of its own).
  blocks(view, from, to) {
    const w = this.w, h = this.h;
    let h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3], h4 = h[4], h5 = h[5], h6 = h[6], h7 = h[7];
    for (let off = from; off < to; off += 64) {
      let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7;
      for (let i = 0; i < 64; i++) {
        let wi;
        if (i < 16) {
          wi = view.getInt32(off + i * 4); // big-endian words
        } else {
          const x = w[i - 15], y = w[i - 2];
          const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
          const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
          wi = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
        }
        w[i] = wi;
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (hh + S1 + (g ^ (e & (f ^ g))) + K[i] + wi) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) | (c & (a | b)))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0;
        d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + hh) | 0;
    }
    h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4; h[5] = h5; h[6] = h6; h[7] = h7;
  }
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

if (typeof importScripts === 'function') {
  let sha = new Sha256();
  let warm = false;
  self.onmessage = ({ data: msg }) => {
    if (msg.type === 'update') {
      // Before a first big piece, 1 MiB of zeros gets the hot loop optimized (a few ms).
      if (!warm && msg.buf.byteLength >= 1 << 20) {
        new Sha256().update(new Uint8Array(1 << 20));
        warm = true;
      }
      sha.update(msg.buf);
      self.postMessage({ type: 'updated', bytes: sha.bytes });
    } else if (msg.type === 'final') {
      const d = sha.digest();
      sha = new Sha256();
      self.postMessage({ type: 'digest', base64: toBase64(d), hex: toHex(d) });
    }
  };
} else if (typeof module === 'object') {
  module.exports = { Sha256, toHex, toBase64 };
}

// Drives tus-js-client 4.x against duet through a proxy that resets the connection at random
// offsets, for test/test_e2e_resumable.cpp. Usage:
//   node tus_upload.js PROTOCOL HTTP_PORT FILE NAME CUTS [TOKEN]
// PROTOCOL is tus-v1 (endpoint /uploads, name in Upload-Metadata) or ietf-draft-05 (endpoint
// /files/NAME). Prints one JSON line and exits 0 when the upload succeeded. With
// TUS_STREAM_CHUNK=BYTES the source is a read stream sent in chunks of that size (tus-js-client
// then ends an ietf-draft-05 upload with a PATCH that says Upload-Complete: ?0).
'use strict'
const fs = require('fs')
const net = require('net')
const tus = require('tus-js-client')

const [protocol, port, file, name, cutsArg, token] = process.argv.slice(2)
const data = fs.readFileSync(file)
const wanted = Number(cutsArg)
// Cut points: cumulative bytes forwarded towards duet, at random, after the first MiB.
const cuts = []
for (let i = 0; i < wanted; i++) cuts.push(1048576 + Math.floor(Math.random() * (data.length - 2097152)))
cuts.sort((a, b) => a - b)
let forwarded = 0
let done = 0
const open = new Set()

const proxy = net.createServer((client) => {
  const upstream = net.connect(Number(port), '127.0.0.1')
  open.add(client)
  const cut = () => {
    // duet sees the reset first, then the client: like a dropped link.
    upstream.resetAndDestroy()
    client.resetAndDestroy()
  }
  client.on('data', (chunk) => {
    forwarded += chunk.length
    if (done < cuts.length && forwarded >= cuts[done]) {
      done++
      cut()
      return
    }
    upstream.write(chunk)
  })
  upstream.on('data', (chunk) => client.write(chunk))
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
  client.on('close', () => { open.delete(client); upstream.destroy() })
  upstream.on('close', () => client.destroy())
})

proxy.listen(0, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${proxy.address().port}`
  const headers = token ? { Authorization: `Bearer ${token}` } : {}
  const chunk = Number(process.env.TUS_STREAM_CHUNK || 0)
  const source = chunk ? fs.createReadStream(file) : data
  const upload = new tus.Upload(source, {
    ...(chunk ? { chunkSize: chunk, uploadSize: data.length } : {}),
    endpoint: protocol === 'tus-v1' ? `${base}/uploads` : `${base}/files/${name}`,
    protocol,
    metadata: { filename: name },
    headers,
    retryDelays: [50, 100, 200, 400, 800, 1000, 1000, 1000],
    storeFingerprintForResuming: false,
    onError: (err) => {
      console.log(JSON.stringify({ ok: false, error: String(err), cuts: done }))
      process.exit(1)
    },
    onSuccess: () => {
      console.log(JSON.stringify({ ok: true, cuts: done, url: upload.url }))
      process.exit(0)
    },
  })
  upload.start()
})

'use strict'
// Sends a plan of calls through the official @segment/analytics-node client and prints, as one
// JSON line on stdout, what the client and the server said about them. tests/api/test_sdk_clients.py
// writes the plan to stdin ({url, writeKey, gzip, maxRetries, calls: [{method, args}]}) and checks
// the summary and the database; this script judges nothing itself, so a failure is always
// explained by the test with the rows in view.
//
// analytics-node has no gzip setting. Its documented extension point is `httpClient`; the one
// used here wraps the SDK's own FetchHTTPClient (what it uses by default), and only adds gzip
// when asked and keeps count of what the server answered. The publisher reads nothing but the
// status, so a body the SDK would accept but an intake should not give (no `success: true`) is
// visible only here.

const fs = require('node:fs')
const zlib = require('node:zlib')
const { Analytics, FetchHTTPClient } = require('@segment/analytics-node')

const SHOWN = 5 // unexpected answers kept in full: enough to see what is wrong, bounded

class ObservedClient {
  constructor (gzip) {
    this.inner = new FetchHTTPClient()
    this.gzip = gzip
    this.requests = 0
    this.gzipped = 0
    this.statuses = {}
    this.unexpected = []
    this.unexpectedCount = 0
  }

  async makeRequest (options) {
    let request = options
    if (this.gzip) {
      request = {
        ...options,
        headers: { ...options.headers, 'Content-Encoding': 'gzip' },
        body: zlib.gzipSync(options.body)
      }
    }
    this.requests++
    if (request.headers['Content-Encoding'] === 'gzip') this.gzipped++
    const response = await this.inner.makeRequest(request)
    this.statuses[response.status] = (this.statuses[response.status] ?? 0) + 1
    const text = await response.clone().text()
    let success = false
    try {
      success = JSON.parse(text).success === true
    } catch {}
    if (response.status !== 200 || !success) {
      this.unexpectedCount++
      if (this.unexpected.length < SHOWN) this.unexpected.push(`${response.status} ${text.slice(0, 300)}`)
    }
    return response
  }
}

async function main () {
  const plan = JSON.parse(fs.readFileSync(0, 'utf8'))
  const http = new ObservedClient(plan.gzip)
  const analytics = new Analytics({
    writeKey: plan.writeKey,
    host: plan.url,
    path: '/v1/batch',
    maxRetries: plan.maxRetries,
    httpClient: http
  })
  const errors = []
  // A failed delivery reaches the call's callback and an `error` event both: count it once, by
  // its callback (a call whose callback never comes is counted below), and keep other errors.
  analytics.on('error', (error) => {
    if (error.code !== 'delivery_failure') errors.push(`error event ${error.code}: ${error.reason}`)
  })
  analytics.on('call_after_close', (event) => errors.push(`${event.type} called after close`))
  const messageIds = new Array(plan.calls.length).fill(null)
  let completed = 0
  plan.calls.forEach(({ method, args }, i) => {
    analytics[method](args, (error, ctx) => {
      completed++
      messageIds[i] = ctx?.event?.messageId ?? null
      if (error) errors.push(`${method} #${i}: ${error}`)
    })
  })
  await analytics.closeAndFlush()
  if (completed !== plan.calls.length) {
    errors.push(`${plan.calls.length - completed} of ${plan.calls.length} calls never completed`)
  }
  process.stdout.write(JSON.stringify({
    version: analytics.VERSION,
    messageIds,
    errors,
    requests: http.requests,
    gzipped: http.gzipped,
    statuses: http.statuses,
    unexpected: http.unexpected,
    unexpectedCount: http.unexpectedCount
  }) + '\n')
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

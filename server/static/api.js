// The server's public API, as the Python clients use it: JSON over HTTP and /v1/stream.

async function get(path, as = "json") {
  const response = await fetch(path);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${body.detail ?? response.statusText}`);
  }
  return as === "json" ? response.json() : response.arrayBuffer();
}

export const listModels = () => get("/v1/models");
export const getModel = (name) => get(`/v1/models/${encodeURIComponent(name)}`);
export const listSamples = () => get("/v1/samples");
export const getSample = (model, file) =>
  get(`/v1/samples/${encodeURIComponent(model)}/${encodeURIComponent(file)}`, "buffer");

// Reconnections wait a random time in [0, min(MAX_MS, BASE_MS * 2^n)] before the nth (full
// jitter), and at least what a 4503 asks for. A lost connection is retried for RETRY_FOR_MS
// without a result (a restarted server takes 20 s to come back warm, two minutes cold); a
// 4503 (warming up, or at the session cap) for as long as the server asks: it is there.
const RETRY_FOR_MS = 120_000;
const BASE_MS = 50;
const MAX_MS = 5000;
// A frame_header (docs/wire-format.md): seq, until_us and a reset's origin (int64 LE, -1:
// none), then flags. The page never resets: each Play is a session of its own.
const HEADER_BYTES = 25;
const FLUSH = 1;

/** A /v1/stream session that survives lost connections, as the Python client's stream does.
 *  Every frame carries its seq in a ``frame_header`` and stays buffered until its result
 *  arrives. When the connection drops, or the server closes it with 4503 (retry later), the
 *  stream reconnects with backoff, resumes the session, forgets the frames the server reports
 *  applied and sends the rest again, so none is lost or applied twice. ``onMessage`` gets
 *  every result (a frame's, or after a resume the last applied one's, whose answer was lost)
 *  and frame error, each with the ``seq`` it answers; ``onReconnect(waitMs, why)`` each
 *  reconnection as it is scheduled; ``onClose(code, reason)`` a close it cannot recover from
 *  (a refusal, or RETRY_FOR_MS without a result), none asked for by ``close()``. */
export class Stream {
  constructor(open, { onMessage, onClose, onReconnect }) {
    const { model, t0_us, ...options } = open;
    this.create = { model, t0_us };
    this.options = { ...options, frame_header: true };
    this.handlers = { onMessage, onClose, onReconnect };
    this.session = null;        // {id, token} once opened
    this.unacked = new Map();   // seq -> frame, in sending order
    this.nextSeq = 0;
    this.frameSeqs = [];        // seq of each frame sent on this connection
    this.resent = new Set();    // seqs sent again on this connection
    this.attempt = 0;           // reconnections since the last result
    this.lostAt = null;         // when the connection was lost with no result since
    this.reconnects = 0;
    this.closing = false;
    this.opened = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.opened.catch(() => {});  // a stream that never opens reports it through onClose
    this.#connect();
  }

  /** Send events (packed in the wire format) with ``until``/``flush``; returns their seq. A
   *  frame sent while reconnecting goes out once the session is resumed. */
  send(events, { until = -1, flush = false } = {}) {
    const seq = this.nextSeq++;
    const frame = new Uint8Array(HEADER_BYTES + events.byteLength);
    const header = new DataView(frame.buffer);
    header.setBigInt64(0, BigInt(seq), true);
    header.setBigInt64(8, BigInt(until), true);
    header.setBigInt64(16, -1n, true);
    header.setUint8(24, flush ? FLUSH : 0);
    frame.set(events, HEADER_BYTES);
    this.unacked.set(seq, frame);
    if (this.ready) this.#transmit(seq);
    return seq;
  }

  get ready() {
    return this.answered && this.ws.readyState === WebSocket.OPEN;
  }

  #connect() {
    const url = new URL("/v1/stream", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const first = this.session ? { session: this.session.id, token: this.session.token }
      : this.create;
    // a load balancer routes a resumed session to the replica that holds it
    if (this.session) url.searchParams.set("session", this.session.id);
    const ws = new WebSocket(url);
    this.ws = ws;
    this.answered = false;  // the server's "opened" has arrived on this connection
    ws.binaryType = "arraybuffer";  // the server sends its JSON in binary frames
    ws.onopen = () => ws.send(JSON.stringify({ ...first, ...this.options }));
    ws.onmessage = (event) => {
      const message = JSON.parse(typeof event.data === "string" ? event.data
        : new TextDecoder().decode(event.data));
      if (message.type === "opened") this.#opened(message);
      else this.#receive(message);
    };
    ws.onclose = (event) => {
      if (ws === this.ws && !this.closing) this.#dropped(event.code, event.reason);
    };
  }

  #opened(message) {
    this.answered = true;
    const resumed = Boolean(this.session);
    let lost = null;  // the result of the last frame applied while cut off
    if (resumed) {
      const { seq, applied } = message;
      if (applied?.seq === seq && this.unacked.has(seq)) lost = applied;
      this.#ack(seq);
    } else {
      this.session = { id: message.id, token: message.token };
      this.settle.resolve(message);
    }
    if (!this.unacked.size) {  // caught up (a paused play): a later loss starts a new budget
      this.attempt = 0;
      this.lostAt = null;
    }
    this.frameSeqs = [];
    this.resent = new Set(resumed ? this.unacked.keys() : []);
    // The rest go again before anything new: a handler of the lost result may send.
    for (const seq of this.unacked.keys()) this.#transmit(seq);
    if (lost) this.handlers.onMessage({ type: "result", ...lost });
  }

  #transmit(seq) {
    this.frameSeqs.push(seq);
    this.ws.send(this.unacked.get(seq));
  }

  #receive(message) {
    if (message.type === "result") {
      this.attempt = 0;  // progress: a later drop starts a new budget
      this.lostAt = null;
      this.#ack(message.seq);
      this.handlers.onMessage(message);
      return;
    }
    const seq = this.frameSeqs[message.frame];
    // A resent frame that had landed after all is refused as a replay: that acknowledges it.
    if (message.status === 409 && this.resent.has(seq) && "last_seq" in message) {
      this.#ack(seq);
      const { applied } = message;
      if (applied?.seq === seq) this.handlers.onMessage({ type: "result", ...applied });
      return;
    }
    this.handlers.onMessage({ ...message, seq });
  }

  #ack(seq) {
    for (const done of this.unacked.keys()) if (done <= seq) this.unacked.delete(done);
  }

  #dropped(code, reason) {
    // 44xx and 1009 are the server's refusals, which a retry would meet again; but 4503.
    const refused = (code >= 4000 && code !== 4503) || code === 1009;
    // A new session asked for and no answer: it may exist, and opening again would leave
    // one behind holding a slot, as the Python client reasons.
    const unknown = !this.session && code !== 4503;
    if (code !== 4503) this.lostAt ??= performance.now();
    const outOfTime = code !== 4503 && performance.now() - this.lostAt > RETRY_FOR_MS;
    if (refused || unknown || outOfTime) {
      const why = reason || `the connection was lost (${code})`;
      this.settle.reject(new Error(why));
      this.handlers.onClose(code, outOfTime && !refused
        ? `the server could not be reached for ${RETRY_FOR_MS / 1e3} s (${why})` : why);
      return;
    }
    const asked = /^retry after ([\d.]+) s/.exec(reason);
    const jitter = Math.random() * Math.min(MAX_MS, BASE_MS * 2 ** this.attempt);
    const waitMs = Math.max(jitter, asked ? Math.min(Number(asked[1]), 60) * 1e3 : 0);
    this.attempt += 1;
    if (this.session) this.reconnects += 1;  // before it, a retried opening (4503: warming up)
    this.handlers.onReconnect(waitMs, reason || `connection lost (${code})`, Boolean(this.session));
    this.timer = setTimeout(() => this.#connect(), waitMs);
  }

  /** Close the connection and end the session, freeing its slot now rather than after the
   *  server's idle timeout (every Play opens a new one). */
  close() {
    if (this.closing) return;  // the session is deleted once
    this.closing = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    const shut = () => ws.close(1000);
    // Closing a socket still connecting logs a console warning in Chromium: wait for it (the
    // open message is then never sent). Once it is sent, wait for the answer: a session may be
    // opening, and its id arrives only with "opened".
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = shut;
    else if (this.answered || this.session) shut();
    else this.opened.then(shut, shut);
    // keepalive: the DELETE still goes out when the page is being closed or reloaded
    this.opened.then(({ id, token }) => fetch(`/v1/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE", headers: { "X-Session-Token": token }, keepalive: true }), () => {})
      .catch(() => {});
  }
}

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

/** A /v1/stream session. ``onMessage`` gets every reply after "opened" (results and frame
 *  errors, in frame order); ``onClose(code, reason)`` any close not asked for by ``close()``. */
export class Stream {
  constructor(open, { onMessage, onClose }) {
    const url = new URL("/v1/stream", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // a load balancer routes a resumed session to the replica that holds it
    if (open.session) url.searchParams.set("session", open.session);
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";  // the server sends its JSON in binary frames
    this.closing = false;
    this.answered = false;  // the server's "opened" has arrived
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => this.ws.send(JSON.stringify(open));
      this.ws.onmessage = (event) => {
        const text = typeof event.data === "string" ? event.data
          : new TextDecoder().decode(event.data);
        const message = JSON.parse(text);
        if (message.type === "opened") {
          this.answered = true;
          resolve(message);
        } else onMessage(message);
      };
      this.ws.onclose = (event) => {
        if (this.closing) return;
        reject(new Error(event.reason || `connection closed (${event.code})`));
        onClose(event.code, event.reason);
      };
    });
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  /** Close the connection and end the session, freeing its slot now rather than after the
   *  server's idle timeout (every Play opens a new one). */
  close() {
    if (this.closing) return;  // the session is deleted once
    this.closing = true;
    const shut = () => this.ws.close(1000);
    // Closing a socket still connecting logs a console warning in Chromium: wait for it (the
    // open message is then never sent). Once it is sent, wait for the answer: a session may be
    // opening, and its id arrives only with "opened".
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.onopen = shut;
    else if (this.answered) shut();
    else this.opened.then(shut, shut);
    // keepalive: the DELETE still goes out when the page is being closed or reloaded
    this.opened.then(({ id, token }) => fetch(`/v1/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE", headers: { "X-Session-Token": token }, keepalive: true }), () => {})
      .catch(() => {});
  }
}

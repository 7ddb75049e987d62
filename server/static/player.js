// Plays a recording into a /v1/stream session at sensor time × speed.
//
// A sensor clock advances with wall time; each animation frame sends the events up to the
// clock with the clock as the ``until_us`` watermark, so bins close as the sensor would close
// them even through silences. The watermark stops at the last event and the final frame
// flushes, which closes exactly the bins /v1/models/{name}/infer closes for the same file.
// At most MAX_IN_FLIGHT frames await a reply; at "max" speed that paces to the server. At a
// finite speed a frame takes everything up to the clock, so a slow round trip (a remote
// server) makes frames longer instead of the playback slower than the sensor.

import { Stream } from "./api.js";
import { indexAt, packEvents } from "./recording.js";

const MAX_IN_FLIGHT = 2;
// Each reply is one point of the probability lines, so at max speed this sets their time
// resolution; 4 is also one of the engine's compiled bin buckets.
const FRAME_BINS = 4;

export class Player {
  /** ``on``: {result(msg, frame), tick(clock), end(), error(text), notice(text, waitMs)};
   *  ``frame`` is {until, last, events: [i0, i1], sentAt, replyMs, lagUs}, what the reply
   *  answers, when it was sent (performance.now()), its round trip, and how far the sensor
   *  clock had moved past its watermark when the answer came (null at "max", where the clock
   *  is at the end). After a lost connection one reply may answer several frames (the
   *  answers to the others were lost): ``frame`` then spans them all. ``notice`` tells of a
   *  reconnection and how long until it is tried. */
  constructor(rec, model, on) {
    this.rec = rec;
    this.dt = model.input.dt_us;
    this.on = on;
    this.clock = rec.t0;       // sensor time (µs) played so far
    this.sentUntil = rec.t0;   // watermark of the last frame sent
    this.answered = rec.t0;    // watermark of the last frame answered
    this.nextEvent = 0;        // first event not sent yet
    this.inFlight = [];        // frames awaiting their reply
    this.pace = 1;             // × sensor time; Infinity: as fast as the server answers
    this.playing = false;
    this.done = false;
    this.stream = new Stream(
      { model: model.name, t0_us: rec.t0, include_spikes: true, top_k: model.labels.length },
      { onMessage: (msg) => this.#reply(msg),
        onClose: (code, reason) => this.#fail(reason),
        onReconnect: (waitMs, why, resuming) => this.on.notice(
          `${why}: ${resuming ? "resuming the session" : "opening a session"}`, waitMs) });
  }

  get reconnects() {
    return this.stream.reconnects;
  }

  get speed() {
    return this.pace;
  }

  set speed(value) {
    // At "max" the clock stands at the end: leaving it, play on from what was sent.
    if (this.pace === Infinity && value !== Infinity) {
      this.clock = Math.min(this.sentUntil, this.rec.tEnd);
    }
    this.pace = value;
  }

  play() {
    if (this.playing || this.done) return;
    this.playing = true;
    let last = performance.now();
    const step = (now) => {
      // The sensor waits for the stream: while the session opens (a warming server may ask
      // for seconds) or resumes, its events could only pile up and arrive at once.
      const elapsedUs = this.stream.ready ? Math.max(0, now - last) * 1e3 : 0;
      this.clock = this.speed === Infinity ? this.rec.tEnd
        : Math.min(this.rec.tEnd, this.clock + elapsedUs * this.speed);
      last = now;
      this.on.tick(this.#shown());
      this.stream.opened.then(() => this.#pump(), () => {});
      this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  pause() {
    this.playing = false;
    cancelAnimationFrame(this.frame);  // a quick pause/play must not leave two clocks running
  }

  stop() {
    this.pause();
    this.stream.close();
  }

  #pump() {
    // A recording all at one instant has no time to play: its one frame is the last.
    while (this.inFlight.length < MAX_IN_FLIGHT
           && (this.sentUntil < this.clock || this.sentUntil === this.rec.tEnd)) {
      const span = this.speed === Infinity ? FRAME_BINS * this.dt : Infinity;
      const until = Math.floor(Math.min(this.clock, this.sentUntil + span));
      const last = until >= this.rec.tEnd;
      const binNow = Math.floor((until - this.rec.t0) / this.dt);
      if (!last && binNow === Math.floor((this.sentUntil - this.rec.t0) / this.dt)) return;
      // The last frame takes every remaining event (those at tEnd too) and flushes.
      const end = last ? this.rec.n : indexAt(this.rec, until);
      const seq = this.stream.send(packEvents(this.rec, this.nextEvent, end),
        last ? { flush: true } : { until });
      this.inFlight.push({ seq, until, last, events: [this.nextEvent, end],
        sentAt: performance.now() });
      this.nextEvent = end;
      this.sentUntil = last ? Infinity : until;
    }
  }

  #reply(msg) {
    if (msg.type === "error") {
      this.#fail(`frame ${msg.seq}: ${msg.detail}`);
      return;
    }
    const answered = this.inFlight.findLastIndex((f) => f.seq <= msg.seq) + 1;
    const frames = this.inFlight.splice(0, answered);
    const frame = frames.length ? { ...frames.at(-1), events: [frames[0].events[0],
      frames.at(-1).events[1]] } : undefined;
    if (frame) {
      frame.replyMs = performance.now() - frame.sentAt;
      frame.lagUs = this.speed === Infinity ? null
        : Math.max(0, this.clock - (frame.last ? this.rec.tEnd : frame.until));
    }
    this.on.result(msg, frame);
    if (frame) this.answered = frame.last ? this.rec.tEnd : frame.until;
    if (frame?.last) {
      this.on.tick(this.#shown());  // the animation stops with the stream: one last reading
      this.done = true;
      this.stop();
      this.on.end();
    } else if (this.playing) {
      this.#pump();
    }
  }

  /** The time to display: the sensor clock, except at "max", where it is at the end at once
   *  and what has been answered is what the user is looking at. */
  #shown() {
    return this.speed === Infinity ? this.answered : this.clock;
  }

  #fail(text) {
    if (this.done) return;
    this.done = true;
    this.stop();
    this.on.error(text);
  }
}

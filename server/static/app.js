// The dashboard: pick a model and a recording, play it through /v1/stream, watch the network.

import { getModel, getSample, listModels, listSamples } from "./api.js";
import { classColor, EventFrame, Lines, Raster } from "./charts.js";
import { Player } from "./player.js";
import { makeRecording, parseCsv, parseNpy } from "./recording.js";

const $ = (id) => document.getElementById(id);
const ui = Object.fromEntries(["model", "sample", "file", "speed", "play", "stop", "input",
  "input-caption", "layers", "decision", "decision-state", "confidence", "truth", "bars",
  "lines", "activity", "totals", "clock", "counts", "status"].map((id) => [id, $(id)]));

const INPUT_RGB = [120, 190, 255];
const SPIKE_RGB = [255, 196, 92];
const RATE_WINDOW_US = 500_000;  // spikes/s are averaged over this much sensor time
const DVS_TAU_US = 30_000;
const STALE_US = 1_000_000;  // the sensor this far ahead of the last answer: say so

let samplesByModel = {};
let model = null;       // GET /v1/models/{name}
let recording = null;   // {rec, truth: sample index entry or null, name}
let player = null;
let views = null;
let dirty = false;
let resuming = false;   // a lost connection was announced and no reply has come since
let countdown = null;   // the status line's count to the next reconnection
let loads = 0;          // models and recordings asked for: only the latest answer is used

function status(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

const seconds = (us) => `${(us / 1e6).toFixed(2)} s`;

/** The decision's state (data-state, for styles and tests) and its label beside "Decision". */
function decisionState(state, label) {
  ui.decision.dataset.state = state;
  ui["decision-state"].textContent = label;
}

/** A live decision (or one aging without answers), which a stall or a reconnection marks. */
const isLive = () => ["live", "stale"].includes(ui.decision.dataset.state);

function option(value, text) {
  const el = document.createElement("option");
  Object.assign(el, { value, textContent: text });
  return el;
}

async function init() {
  const [models, samples] = await Promise.all([listModels(), listSamples()]);
  samplesByModel = Object.fromEntries(samples.map((s) => [s.model, s.samples]));
  if (!models.length) throw new Error("the server serves no models");
  ui.model.replaceChildren(...models.map((m) => option(m.name, `${m.name} (${m.input.sensor})`)));
  await selectModel();
}

/** A new model or recording is on its way: until it is here, there is nothing to play, and
 *  the number returned tells its answer from those of loads asked for before it. */
function startLoad() {
  stop();
  recording = null;
  ui.play.disabled = true;
  return ++loads;
}

async function selectModel() {
  const load = startLoad();
  ui.file.value = "";  // so choosing the same file again is a change
  let card;
  try {
    card = await getModel(ui.model.value);
  } catch (err) {
    if (load === loads && model) ui.model.value = model.name;  // the box shows what is loaded
    throw err;
  }
  if (load !== loads) return;  // something else was picked meanwhile
  model = card;
  const samples = samplesByModel[model.name] ?? [];
  ui.sample.replaceChildren(option("", samples.length ? "choose…" : "none shipped"),
    ...samples.map((s) => option(s.file, s.label_name ? `${s.file} (${s.label_name})` : s.file)));
  ui.sample.disabled = !samples.length;
  clearViews();
  status(`${model.name}: ${model.labels.length} classes, ${model.architecture.neurons.length} ` +
         "layers. Pick a sample or a file.");
}

async function selectSample() {
  const load = startLoad();
  ui.file.value = "";
  if (!ui.sample.value) return;
  const chosen = model;
  const entry = samplesByModel[chosen.name].find((s) => s.file === ui.sample.value);
  const buffer = await getSample(chosen.name, entry.file);
  if (load !== loads) return;  // another sample, file or model was picked meanwhile
  useRecording(makeRecording(parseNpy(buffer), chosen.input.sensor), entry, entry.file);
}

async function selectFile() {
  const file = ui.file.files[0];
  const load = startLoad();
  ui.sample.value = "";
  if (!file) return;
  const chosen = model;
  const columns = file.name.toLowerCase().endsWith(".csv") ? parseCsv(await file.text())
    : parseNpy(await file.arrayBuffer());
  if (load !== loads) return;
  useRecording(makeRecording(columns, chosen.input.sensor), null, file.name);
}

function useRecording(rec, truth, name) {
  stop();
  recording = { rec, truth, name };
  buildViews();
  ui.play.disabled = false;
  // A late start is binned from its first event: say so, /infer's default origin is 0.
  const origin = rec.t0 ? ` from its first event at ${seconds(rec.t0)} (/infer's t0_us=` +
    `${rec.t0})` : "";
  status(`${name}: ${rec.n} events over ${seconds(rec.tEnd - rec.t0)}${origin}. Press Play ` +
         "(Space).");
}

/** Fresh views for the current model and recording. */
function buildViews() {
  const { input, architecture, labels } = model;
  const { rec } = recording;
  // Rasters scroll over the last 1.5 s (100 to 600 bins), or span a shorter recording.
  const bins = Math.ceil((rec.tEnd - rec.t0) / input.dt_us) + 1;
  const columns = Math.min(bins, 600, Math.max(100, Math.round(1.5e6 / input.dt_us)));
  const inputView = input.sensor === "cochlea"
    ? new Raster(ui.input, input.channels, columns, INPUT_RGB, 3)
    : new EventFrame(ui.input, input.width, input.height, DVS_TAU_US);
  ui["input-caption"].textContent = input.sensor === "cochlea"
    ? `${input.channels} channels × last ${seconds(columns * input.dt_us)}`
    : `${input.width}×${input.height} DVS, ON green / OFF magenta, τ ${DVS_TAU_US / 1000} ms`;
  ui.input.closest("article").dataset.sensor = input.sensor;
  ui.layers.replaceChildren();
  // Every raster keeps its minimum height; the input panel gives way first.
  ui.layers.style.minHeight = `calc(${architecture.neurons.length} * var(--layer-min) + ` +
    `${architecture.neurons.length - 1} * 10px)`;
  const layers = architecture.neurons.map((n, i) => {
    const panel = document.createElement("article");
    panel.className = "panel layer";
    panel.innerHTML = `<h2>Layer ${i + 1} spikes <small>${n} neurons × last ` +
      `${seconds(columns * input.dt_us)}</small></h2><canvas role="img"></canvas>`;
    const canvas = panel.querySelector("canvas");
    canvas.setAttribute("aria-label", `Layer ${i + 1} spike raster`);
    ui.layers.append(panel);
    return new Raster(canvas, n, columns, SPIKE_RGB);
  });
  const lines = new Lines(ui.lines, labels.length, rec.tEnd - rec.t0 + input.dt_us);
  const barColumns = Math.ceil(labels.length / 12);
  ui.bars.style.setProperty("--bar-columns", barColumns);
  ui.bars.style.setProperty("--bar-rows", Math.ceil(labels.length / barColumns));
  ui.bars.replaceChildren(...labels.map((label, i) => {
    const li = document.createElement("li");
    li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span>' +
      '<span class="value">–</span>';
    li.querySelector(".name").textContent = label;
    li.querySelector(".bar span").style.background = classColor(i);
    return li;
  }));
  ui.activity.tBodies[0].replaceChildren(...["input", ...architecture.neurons].map((n, i) => {
    const row = document.createElement("tr");
    row.innerHTML = "<th scope='row'></th><td></td><td>–</td><td>–</td>";
    row.cells[0].textContent = i ? `Layer ${i}` : "Input events";
    row.cells[1].textContent = i ? n : "";
    return row;
  }));
  views = { input: inputView, layers, lines, recent: [], events: 0 };
  ui.totals.textContent = "";
  resetDecision();
  ui.counts.textContent = "";
  tick(rec.t0);
  dirty = true;
}

/** The decision panel of a stream that has not begun. */
function resetDecision() {
  ui.decision.textContent = "–";
  delete ui.decision.dataset.index;
  ui.decision.style.color = "";
  decisionState("idle", "waiting");
  ui.confidence.textContent = "no events yet";
  ui.truth.textContent = truthText(null);
}

/** No recording (another model): empty panels, nothing that reads as another's result. */
function clearViews() {
  views = null;
  for (const canvas of [ui.input, ui.lines]) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
  ui.layers.replaceChildren();
  ui.bars.replaceChildren();
  ui.activity.tBodies[0].replaceChildren();
  ui.totals.textContent = "";
  resetDecision();
  ui.counts.textContent = "";
  ui.clock.textContent = "";
}

function truthText(decision) {
  const truth = recording?.truth;
  if (!truth?.label_name) return "";
  const mark = decision === null ? "" : decision === truth.label_name ? " ✓" : " ✗";
  return `true label: ${truth.label_name}${mark}`;
}

function togglePlay() {
  if (!recording || ui.play.disabled) return;  // Space too: nothing plays while a model loads
  if (!player || player.done) {
    buildViews();
    player = new Player(recording.rec, model, { result, tick, end, error, notice });
  }
  if (player.playing) {
    player.pause();
    status("Paused.");
  } else {
    player.speed = Number(ui.speed.value);
    player.play();
    status(`Playing ${recording.name}…`);
  }
  ui.play.textContent = player.playing ? "Pause" : "Play";
  ui.stop.disabled = false;
}

function stop() {
  player?.stop();
  player = null;
  clearInterval(countdown);
  ui.play.textContent = "Play";
  ui.stop.disabled = true;
}

function tick(clock) {
  const { rec } = recording;
  // At a finite speed the clock runs on while a server stalls or reconnects: show the gap.
  const behind = player?.playing && player.speed !== Infinity ? clock - player.answered : 0;
  const stale = behind > STALE_US;
  ui.clock.textContent = `${seconds(clock - rec.t0)} / ${seconds(rec.tEnd - rec.t0)}` +
    (stale ? ` · no answer for ${seconds(behind)} of sensor time` : "");
  if (!resuming && isLive()) {
    decisionState(stale ? "stale" : "live", stale ? "waiting for the server" : "live");
  }
}

/** One reply of the stream: the events of its frame, the bins it closed, the outputs. */
function result(msg, frame) {
  const { rec } = recording;
  const dt = model.input.dt_us;
  const head = msg.bins.total;
  const [i0, i1] = frame.events;
  const { t, channel, x, y, p } = rec.cols;
  if (views.input instanceof Raster) {
    // Up to the bin of the frame's last event: events of the still-open bin are drawn too.
    const last = i1 > i0 ? Math.floor((t[i1 - 1] - rec.t0) / dt) + 1 : 0;
    views.input.advance(Math.max(head, last));
    for (let i = i0; i < i1; i++) views.input.add(Math.floor((t[i] - rec.t0) / dt), channel[i]);
  } else {
    views.input.decayTo(frame.until);
    for (let i = i0; i < i1; i++) views.input.add(x[i], y[i], p[i], t[i]);
  }
  for (const raster of views.layers) raster.advance(head);
  for (const { layer, bin, neuron } of msg.rasters ?? []) {
    bin.forEach((b, k) => views.layers[layer].add(b, neuron[k]));
  }
  if (msg.bins.batch) views.lines.add(head * dt, msg.probabilities);
  showRates(msg, i1 - i0);
  showTotals(msg);
  showDecision(msg, head * dt);
  views.events += i1 - i0;
  const lag = frame.lagUs === null ? ""
    : ` · ${(frame.lagUs / 1e3).toFixed(0)} ms behind the sensor`;
  const { reconnects } = player;
  const resumed = reconnects ? ` · resumed after ${reconnects} lost connection` +
    (reconnects > 1 ? "s" : "") : "";
  ui.counts.textContent = `${views.events} events · ${head} bins · ` +
    `reply ${frame.replyMs.toFixed(1)} ms (server ${msg.server_time_ms.toFixed(1)} ms)${lag}` +
    resumed;
  if (resuming) {  // the status line still says it is reconnecting
    resuming = false;
    clearInterval(countdown);
    status(player.playing ? `Playing ${recording.name}…` : "Paused.");
  }
  dirty = true;
}

/** The connection was lost (or the server asked to retry): the player tries again in
 *  ``waitMs``, counted down in the status line. */
function notice(text, waitMs) {
  clearInterval(countdown);
  const at = performance.now() + waitMs;
  const show = () => {
    if (player?.stream.ready && at <= performance.now()) {  // back, with nothing to answer yet
      clearInterval(countdown);
      resuming = false;
      if (isLive()) decisionState("live", "live");
      status(player.playing ? `Playing ${recording.name}…` : "Paused.");
      return;
    }
    status(`${text} in ${(Math.max(0, at - performance.now()) / 1e3).toFixed(1)} s…`);
  };
  show();
  countdown = setInterval(show, 100);
  resuming = true;
  if (isLive()) decisionState("stale", "reconnecting");  // the last answer, aging
}

function showDecision(msg, tUs) {
  if (msg.label === null) return;  // no bin closed yet: no decision, as resetDecision shows
  const best = msg.top_k[0];
  decisionState("live", "live");
  ui.decision.textContent = best.label;
  ui.decision.dataset.index = best.index;
  ui.decision.style.color = classColor(best.index);
  ui.confidence.textContent = `${(best.probability * 100).toFixed(1)}% confidence ` +
    `after ${seconds(tUs)}`;
  ui.truth.textContent = truthText(null);
  ui.bars.querySelectorAll("li").forEach((li, i) => {
    const p = msg.probabilities[i];
    li.querySelector(".bar span").style.width = `${(p * 100).toFixed(1)}%`;
    li.querySelector(".value").textContent = `${(p * 100).toFixed(1)}%`;
    li.classList.toggle("top", i === best.index);
  });
}

/** Spikes per second of sensor time, per layer, over the last RATE_WINDOW_US. */
function showRates(msg, events) {
  const { recent } = views;
  const dt = model.input.dt_us;
  recent.push({ bins: msg.bins.batch, counts: [events, ...msg.spikes.batch] });
  while (recent.length > 1 && dt * (recent.reduce((s, r) => s + r.bins, 0)
    - recent[0].bins) >= RATE_WINDOW_US) recent.shift();
  const span = recent.reduce((s, r) => s + r.bins, 0) * dt / 1e6;
  if (!span) return;
  const rows = ui.activity.tBodies[0].rows;
  ["input", ...model.architecture.neurons].forEach((n, i) => {
    const rate = recent.reduce((s, r) => s + r.counts[i], 0) / span;
    rows[i].cells[2].textContent = Math.round(rate).toLocaleString("en");
    rows[i].cells[3].textContent = i ? (rate / n).toFixed(1) : "";
  });
}

/** The stream's sparsity since its start, as the API reports it. */
function showTotals(msg) {
  const spikes = msg.spikes.total.map((n) => n.toLocaleString("en")).join(" / ");
  const rates = msg.firing_rate.total.map((r) => `${(r * 100).toFixed(2)} %`).join(" / ");
  ui.totals.textContent = `So far: ${spikes} spikes per layer · ${rates} of neurons a bin · ` +
    `${msg.synops.total.toLocaleString("en")} SynOps`;
}

function end() {
  ui.stop.disabled = true;  // its session is gone already
  const decided = ui.decision.dataset.index !== undefined;
  const decision = ui.decision.textContent;
  decisionState("final", "final");
  ui.truth.textContent = truthText(decided ? decision : null);
  ui.play.textContent = "Replay";
  status(`Finished ${recording.name}: ${decision} (${ui.confidence.textContent}).`);
}

function error(text) {
  clearInterval(countdown);
  ui.stop.disabled = true;
  ui.play.textContent = "Replay";
  decisionState("error", "stopped: see below");
  status(`Error: ${text}`, true);
}

function render() {
  if (dirty && views) {
    views.input.draw();
    views.layers.forEach((r) => r.draw());
    views.lines.draw();
    dirty = false;
  }
  requestAnimationFrame(render);
}

/** Run an async handler, reporting its failure in the status line (not as a console error). */
const guarded = (fn) => (...args) => fn(...args).catch((err) => status(`Error: ${err.message}`,
  true));

ui.model.addEventListener("change", guarded(selectModel));
ui.sample.addEventListener("change", guarded(selectSample));
ui.file.addEventListener("change", guarded(selectFile));
ui.speed.addEventListener("change", () => {
  if (player) player.speed = Number(ui.speed.value);
});
ui.play.addEventListener("click", togglePlay);
ui.stop.addEventListener("click", () => {
  stop();
  decisionState("idle", "stopped");  // what it shows is where the stream stopped
  status("Stopped.");
});
document.addEventListener("keydown", (event) => {
  // Space plays/pauses from anywhere except where it already means something: a button
  // (it clicks it) or the file picker (it opens it).
  const target = event.target;
  if (event.code !== "Space" || target.tagName === "BUTTON" || target.type === "file") return;
  event.preventDefault();
  if (!event.repeat) togglePlay();  // a held key is one press
});
window.addEventListener("resize", () => { dirty = true; });
// A reload or a closed tab ends the session too, instead of leaving it for the idle timeout.
window.addEventListener("pagehide", () => player?.stop());

guarded(init)();
requestAnimationFrame(render);

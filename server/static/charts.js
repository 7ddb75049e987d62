// Canvas views. Each keeps its own data and repaints whole in draw(); the page calls draw()
// at most once per animation frame, so a burst of replies costs one paint.

// Ten hues; the next ten classes take them paler (and dashed in the lines chart): SHD's German
// words are then told from their English pairs, which share a hue. No grey: it reads as off.
const PALETTE = ["#4e9ff5", "#f5a142", "#4fc46a", "#ef5a5a", "#a883e8",
                 "#c08a5b", "#ee82c8", "#a6e22e", "#d4cf45", "#35c9d8"];
const BACKGROUND = [17, 21, 28];
const GRID = "#2a3140";
const TEXT = "#9aa4b2";

export function classColor(i) {
  const hue = PALETTE[i % PALETTE.length];
  if (Math.floor(i / PALETTE.length) % 2 === 0) return hue;
  const pale = [1, 3, 5].map((k) => Math.round(parseInt(hue.slice(k, k + 2), 16) * 0.5 + 127.5));
  return `rgb(${pale.join(", ")})`;
}

/** Dashed for the classes of pale colours (see PALETTE). */
export const classDash = (i) => Math.floor(i / PALETTE.length) % 2 === 1;

/** Match the canvas' pixel size to its CSS size (sharp on HiDPI) and return its context. */
function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
  return canvas.getContext("2d");
}

/** Packed RGBA (little-endian Uint32) of ``rgb`` blended over the background by ``a``. */
function blend(rgb, a) {
  const [r, g, b] = rgb.map((c, i) => Math.round(BACKGROUND[i] * (1 - a) + c * a));
  return (255 << 24 | b << 16 | g << 8 | r) >>> 0;
}

/** rows × the last ``columns`` bins, scrolling as the stream closes bins. Cells hold counts
 *  (saturating at 255) coloured up to ``saturate``; row 0 is at the bottom. Each cell is
 *  painted at least one pixel and overlapping cells keep the maximum, so no spike vanishes
 *  when there are more rows than pixels. */
export class Raster {
  constructor(canvas, rows, columns, rgb, saturate = 1) {
    Object.assign(this, { canvas, rows, columns });
    this.cells = new Uint8Array(columns * rows);
    this.head = 0;  // bins closed: the right edge of the view
    this.seen = false;  // any count added yet
    this.lut = Uint32Array.from({ length: 256 }, (_, v) => blend(rgb, Math.min(1, v / saturate)));
  }

  #slot(bin) {
    return (bin % this.columns) * this.rows;
  }

  /** Scroll so that bin ``head - 1`` is the rightmost column. */
  advance(head) {
    for (let b = Math.max(this.head, head - this.columns); b < head; b++) {
      this.cells.fill(0, this.#slot(b), this.#slot(b) + this.rows);
    }
    this.head = Math.max(this.head, head);
  }

  add(bin, row) {
    if (bin < this.head - this.columns || bin >= this.head || row >= this.rows) return;
    const i = this.#slot(bin) + row;
    if (this.cells[i] < 255) this.cells[i]++;
    this.seen = true;
  }

  draw() {
    const ctx = fit(this.canvas);
    const { width: w, height: h } = this.canvas;
    if (this.image?.width !== w || this.image?.height !== h) {
      this.image = ctx.createImageData(w, h);
      this.plane = new Uint8Array(w * h);
    }
    const { plane, rows, columns: n, cells } = this;
    plane.fill(0);
    for (let c = 0; c < n; c++) {
      const bin = this.head - n + c;
      if (bin < 0) continue;
      const x0 = Math.floor((c * w) / n), x1 = Math.max(x0 + 1, Math.floor(((c + 1) * w) / n));
      const base = this.#slot(bin);
      for (let r = 0; r < rows; r++) {
        const v = cells[base + r];
        if (!v) continue;
        const y1 = h - Math.floor((r * h) / rows);
        const y0 = Math.min(y1 - 1, h - Math.floor(((r + 1) * h) / rows));
        for (let y = y0; y < y1; y++) {
          for (let x = x0, i = y * w + x0; x < x1; x++, i++) if (plane[i] < v) plane[i] = v;
        }
      }
    }
    const pixels = new Uint32Array(this.image.data.buffer);
    for (let i = 0; i < plane.length; i++) pixels[i] = this.lut[plane[i]];
    ctx.putImageData(this.image, 0, 0);
    if (!this.seen && this.head) {  // an empty raster would look like a broken one
      ctx.fillStyle = TEXT;
      ctx.font = `${12 * (window.devicePixelRatio || 1)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("no spikes so far", w / 2, h / 2);
    }
  }
}

/** A DVS event frame: every event adds to its pixel and the frame decays with time constant
 *  ``tauUs`` of sensor time, so it shows roughly the last ``tauUs`` of motion. ON events are
 *  green, OFF events magenta. */
export class EventFrame {
  constructor(canvas, width, height, tauUs) {
    Object.assign(this, { canvas, width, height, tauUs });
    this.on = new Float32Array(width * height);
    this.off = new Float32Array(width * height);
    this.t = null;
    this.pixels = document.createElement("canvas");
    Object.assign(this.pixels, { width, height });
  }

  /** Advance to sensor time ``t`` (µs), decaying what is there. */
  decayTo(t) {
    if (this.t !== null && t > this.t) {
      const k = Math.exp(-(t - this.t) / this.tauUs);
      for (let i = 0; i < this.on.length; i++) { this.on[i] *= k; this.off[i] *= k; }
    }
    this.t = Math.max(this.t ?? t, t);
  }

  /** An event at time ``t`` <= the frame's time. */
  add(x, y, p, t) {
    if (x >= this.width || y >= this.height) return;
    const weight = Math.exp(-(this.t - t) / this.tauUs);
    (p ? this.on : this.off)[y * this.width + x] += weight;
  }

  draw() {
    const ctx = fit(this.canvas);
    const small = this.pixels.getContext("2d");
    const image = small.createImageData(this.width, this.height);
    const rgba = image.data;  // clamps each channel to 255
    for (let i = 0, j = 0; i < this.on.length; i++, j += 4) {
      const on = Math.min(1, this.on[i] / 2), off = Math.min(1, this.off[i] / 2);
      rgba[j] = BACKGROUND[0] + 220 * off;
      rgba[j + 1] = BACKGROUND[1] + 225 * on;
      rgba[j + 2] = BACKGROUND[2] + 90 * on + 220 * off;
      rgba[j + 3] = 255;
    }
    small.putImageData(image, 0, 0);
    const { width: w, height: h } = this.canvas;
    const scale = Math.min(w / this.width, h / this.height);
    ctx.fillStyle = "#0b0e13";
    ctx.fillRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = false;  // show the sensor's pixels as pixels
    ctx.drawImage(this.pixels, (w - this.width * scale) / 2, (h - this.height * scale) / 2,
                  this.width * scale, this.height * scale);
  }
}

/** Class probabilities over the recording's time; the current top class drawn bold. */
export class Lines {
  constructor(canvas, nClasses, durationUs) {
    Object.assign(this, { canvas, nClasses, durationUs: Math.max(durationUs, 1) });
    this.points = [];  // [t (µs from the origin), probabilities]
  }

  add(t, probabilities) {
    this.points.push([t, probabilities]);
  }

  /** The last point of each pixel column of ``X`` (µs -> canvas x): a minute-long recording
   *  has thousands of results, and a path through every one per class and frame is what makes
   *  a paint slow (bench/dashboard.py). */
  visible(X) {
    return this.points.filter(([t], i, all) =>
      i === all.length - 1 || Math.round(X(all[i + 1][0])) !== Math.round(X(t)));
  }

  draw() {
    const ctx = fit(this.canvas);
    const { width: w, height: h } = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const pad = { left: 30 * dpr, right: 12 * dpr, top: 6 * dpr, bottom: 20 * dpr };
    const X = (t) => pad.left + (t / this.durationUs) * (w - pad.left - pad.right);
    const Y = (p) => h - pad.bottom - p * (h - pad.top - pad.bottom);
    ctx.clearRect(0, 0, w, h);
    ctx.font = `${10 * dpr}px system-ui, sans-serif`;
    ctx.fillStyle = TEXT;
    ctx.strokeStyle = GRID;
    ctx.lineWidth = dpr;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const p of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(pad.left, Y(p));
      ctx.lineTo(w - pad.right, Y(p));
      ctx.stroke();
      ctx.fillText(p.toFixed(1), pad.left - 4 * dpr, Y(p));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    // Labels at least 48 CSS px apart, on a 1-2-5 step of seconds.
    const seconds = this.durationUs / 1e6;
    const room = Math.max(1, (w - pad.left - pad.right) / (48 * dpr));
    const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600]
      .find((s) => seconds / s <= room) ?? Math.ceil(seconds / room / 600) * 600;
    for (let k = 0; k * step <= seconds + 1e-9; k++) {
      ctx.fillText(`${+(k * step).toFixed(1)} s`, X(k * step * 1e6), h - pad.bottom + 6 * dpr);
    }
    if (!this.points.length) return;
    const shown = this.visible(X);
    const latest = this.points.at(-1)[1];
    const top = latest.indexOf(Math.max(...latest));
    const order = [...latest.keys()].filter((c) => c !== top).concat(top);  // top drawn last
    for (const c of order) {
      ctx.beginPath();
      shown.forEach(([t, probs], i) => (i ? ctx.lineTo : ctx.moveTo).call(
        ctx, X(t), Y(probs[c])));
      ctx.strokeStyle = classColor(c);
      ctx.globalAlpha = c === top ? 1 : 0.45;
      ctx.lineWidth = (c === top ? 2.5 : 1.2) * dpr;
      ctx.setLineDash(classDash(c) ? [5 * dpr, 3 * dpr] : []);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }
}

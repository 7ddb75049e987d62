// Recordings in the browser: .npy / CSV files -> sorted event columns in the wire field names,
// packed for /v1/stream in the server's wire format (docs/wire-format.md: little-endian "t"
// int64 µs, then "channel" or "x, y, p"); any integer widths or byte orders numpy may write
// are accepted here and converted.

const FIELDS = { cochlea: ["t", "channel"], dvs: ["t", "x", "y", "p"] };
// Each field's bytes in a packed record, and the values they hold (t: what a double does).
const WIRE = {
  t: [8, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "int64"],
  channel: [2, 0, 0xffff, "uint16"], x: [2, 0, 0xffff, "uint16"], y: [2, 0, 0xffff, "uint16"],
  p: [1, 0, 0xff, "uint8"],
};

const READERS = {
  i1: [1, (v, o) => v.getInt8(o)], u1: [1, (v, o) => v.getUint8(o)],
  b1: [1, (v, o) => v.getUint8(o)],  // bool polarity
  i2: [2, (v, o, le) => v.getInt16(o, le)], u2: [2, (v, o, le) => v.getUint16(o, le)],
  i4: [4, (v, o, le) => v.getInt32(o, le)], u4: [4, (v, o, le) => v.getUint32(o, le)],
  i8: [8, (v, o, le) => Number(v.getBigInt64(o, le))],
  u8: [8, (v, o, le) => Number(v.getBigUint64(o, le))],
  f4: [4, (v, o, le) => v.getFloat32(o, le)], f8: [8, (v, o, le) => v.getFloat64(o, le)],
};

/** Parse a .npy holding a 1-d structured array -> {name: Float64Array}. */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") {
    const hdf5 = String.fromCharCode(...bytes.subarray(1, 4)) === "HDF";
    throw new Error(hdf5 ? "an HDF5 file: the page plays .npy and CSV; export samples with "
      + "`s5rf data samples`, or stream it with `s5rf replay FILE --index N`"
      : "not a .npy file");
  }
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const shape = /'shape':\s*\((\d+),?\)/.exec(header);
  if (!shape || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`expected a 1-d structured array, got header ${header.trim()}`);
  }
  const fields = [];
  let itemsize = 0;
  for (const [, name, order, code] of header.matchAll(/\('([^']*)',\s*'([<>|=]?)(\w+)'\)/g)) {
    const size = READERS[code]?.[0] ?? /^V(\d+)$/.exec(code)?.[1];  // V: padding bytes
    if (size === undefined) throw new Error(`unsupported field type ${code} of ${name}`);
    if (name && READERS[code]) fields.push({ name, read: READERS[code][1], offset: itemsize,
                                             le: order !== ">" });
    itemsize += Number(size);
  }
  if (!fields.length) throw new Error("a .npy of events needs a structured dtype (t, ...)");
  const n = Number(shape[1]);
  const data = start + headerLen;
  if (buffer.byteLength < data + n * itemsize) throw new Error(".npy file is truncated");
  const columns = {};
  for (const { name, read, offset, le } of fields) {
    const col = new Float64Array(n);
    for (let i = 0, o = data + offset; i < n; i++, o += itemsize) col[i] = read(view, o, le);
    columns[name] = col;
  }
  return columns;
}

const EVENT_FIELDS = new Set(["t", "channel", "x", "y", "p"]);

/** Parse CSV with a header row naming the columns (t,channel or t,x,y,p). As spreadsheets
 *  write it too: a byte-order mark, quoted or upper-case names, other columns (ignored). */
export function parseCsv(text) {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/)
    .filter((l) => l.trim() && !l.startsWith("#"));
  const names = lines.shift()?.split(",")
    .map((s) => s.trim().replace(/^["']|["']$/g, "").toLowerCase()) ?? [];
  if (!names.includes("t")) throw new Error("the CSV needs a header row naming a `t` column");
  const wanted = names.map((k, j) => [k, j]).filter(([k]) => EVENT_FIELDS.has(k));
  const columns = Object.fromEntries(wanted.map(([k]) => [k, new Float64Array(lines.length)]));
  lines.forEach((line, i) => {
    const values = line.split(",");
    if (values.length < names.length) {  // more (trailing, unnamed) are ignored, as in Python
      throw new Error(`CSV line ${i + 2} has ${values.length} fields; the header names ` +
                      `${names.length}`);
    }
    for (const [k, j] of wanted) {
      const v = values[j];
      const x = v.trim() === "" ? NaN : Number(v);  // Number("") is 0: an empty field is no value
      if (!Number.isFinite(x)) throw new Error(`CSV line ${i + 2}: ${JSON.stringify(v)}`);
      columns[k][i] = x;
    }
  });
  return columns;
}

/** Columns -> a recording for ``sensor``: {sensor, n, cols, t0, tEnd}, sorted by t.
 *  ``t0`` is the bin origin; 0 keeps the bins of offline evaluation, but a recording that
 *  starts late (camera clock) would then open with thousands of empty bins. */
export function makeRecording(columns, sensor) {
  if (sensor === "cochlea" && !columns.channel && columns.y) {
    throw new Error("this is a DVS recording (x, y, p); pick a DVS model");
  }
  if (sensor === "cochlea" && !columns.channel && columns.x) columns.channel = columns.x;  // tonic
  const missing = FIELDS[sensor].filter((k) => !columns[k]);
  if (missing.length) {
    throw new Error(`a ${sensor} recording needs fields ${FIELDS[sensor].join(", ")}; ` +
                    `missing ${missing.join(", ")}`);
  }
  const n = columns.t.length;
  if (!n) throw new Error("the recording holds no events");
  const order = Array.from({ length: n }, (_, i) => i);
  if (columns.t.some((v, i) => i && v < columns.t[i - 1])) {
    order.sort((a, b) => columns.t[a] - columns.t[b] || a - b);
  }
  const cols = Object.fromEntries(FIELDS[sensor].map((k) => [k, Float64Array.from(
    order, (i) => columns[k][i])]));
  for (const [k, col] of Object.entries(cols)) {  // packed, a value would wrap or be cut
    const [, lo, hi, type] = WIRE[k];
    const i = col.findIndex((v) => !Number.isInteger(v) || v < lo || v > hi);
    if (i >= 0) {
      const hint = k === "t" && !Number.isInteger(col[i]) ? " (t is in whole µs; these look "
        + "like seconds)" : "";
      throw new Error(`${k} value ${col[i]} does not fit the wire format's ${type}${hint}`);
    }
  }
  const first = cols.t[0];
  return { sensor, n, cols, t0: first > 1e6 ? first : 0, tEnd: cols.t[n - 1] };
}

/** Index of the first event at or after ``t`` (binary search). */
export function indexAt(rec, t) {
  let lo = 0, hi = rec.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rec.cols.t[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Events [i0, i1) packed in the wire format, as a /v1/stream binary frame carries them. */
export function packEvents(rec, i0, i1) {
  const fields = FIELDS[rec.sensor].map((k) => [rec.cols[k], WIRE[k][0]]);
  const size = fields.reduce((sum, [, n]) => sum + n, 0);
  const bytes = new Uint8Array(Math.max(0, i1 - i0) * size);
  const view = new DataView(bytes.buffer);
  for (let i = i0, o = 0; i < i1; i++) {
    for (const [col, n] of fields) {
      if (n === 8) view.setBigInt64(o, BigInt(col[i]), true);
      else if (n === 2) view.setUint16(o, col[i], true);
      else view.setUint8(o, col[i]);
      o += n;
    }
  }
  return bytes;
}

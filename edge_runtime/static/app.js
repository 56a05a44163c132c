// kws-edge upload page: posts a WAV to /api/predict and draws the answer.
"use strict";

const $ = (id) => document.getElementById(id);
const RECORD_MS = 1500;

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function showPlayer(blob) {
  const player = $("player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
}

function drawResult(data) {
  $("result-label").textContent = data.label;
  $("result-prob").textContent = (100 * data.probability).toFixed(1) + " %";
  $("latency").textContent = data.latency_ms.toFixed(1);
  $("duration").textContent = data.duration_s.toFixed(2);
  const bars = $("topk");
  bars.replaceChildren();
  data.top_k.forEach((entry, i) => {
    const row = document.createElement("div");
    row.className = "bar-row" + (i === 0 ? " top" : "");
    row.dataset.label = entry.label;
    const name = document.createElement("span");
    name.className = "bar-name";
    name.textContent = entry.label;
    const track = document.createElement("div");
    track.className = "bar-track";
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = (100 * entry.probability).toFixed(1) + "%";
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = entry.probability.toFixed(3);
    row.append(name, track, value);
    bars.append(row);
  });
  const list = $("detections");
  list.replaceChildren();
  (data.detections || []).forEach((d) => {
    const item = document.createElement("li");
    item.textContent = `${d.start_s.toFixed(2)}–${d.end_s.toFixed(2)} s: ${d.label} ` +
      `(${d.probability.toFixed(3)})`;
    list.append(item);
  });
  list.hidden = !(data.detections && data.detections.length);
  $("result").hidden = false;
}

async function predict(body, headers) {
  showError("");
  setStatus("classifying…");
  try {
    const response = await fetch("/api/predict", { method: "POST", body, headers });
    let data;
    try { data = await response.json(); } catch { data = { error: response.statusText }; }
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    drawResult(data);
    setStatus("done");
  } catch (err) {
    $("result").hidden = true;
    setStatus("");
    showError(err.message);
  }
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) { showError("choose a .wav file first"); return; }
  showPlayer(file);
  const form = new FormData();
  form.append("file", file);
  predict(form);
});

// 16-bit PCM mono WAV from float samples in [-1, 1].
function encodeWav(samples, rate) {
  const buffer = new ArrayBuffer(44 + 2 * samples.length);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * samples.length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
  view.setUint16(22, 1, true); view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * samples.length, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + 2 * i, Math.round(x * 32767), true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

function mono(audioBuffer) {
  const out = new Float32Array(audioBuffer.length);
  for (let c = 0; c < audioBuffer.numberOfChannels; c++) {
    const data = audioBuffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += data[i] / audioBuffer.numberOfChannels;
  }
  return out;
}

async function record() {
  const button = $("record");
  button.disabled = true;
  showError("");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const parts = [];
    recorder.ondataavailable = (e) => parts.push(e.data);
    const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
    recorder.start();
    setStatus("recording… say a keyword");
    setTimeout(() => recorder.stop(), RECORD_MS);
    await stopped;
    const encoded = await new Blob(parts, { type: recorder.mimeType }).arrayBuffer();
    const context = new AudioContext();
    const decoded = await context.decodeAudioData(encoded);
    context.close();
    const wav = encodeWav(mono(decoded), decoded.sampleRate);
    showPlayer(wav);
    await predict(wav, { "Content-Type": "audio/wav" });
  } catch (err) {
    setStatus("");
    showError("recording failed: " + err.message);
  } finally {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    button.disabled = false;
  }
}

if (navigator.mediaDevices && window.MediaRecorder && window.AudioContext) {
  $("record").addEventListener("click", record);
} else {
  $("record").disabled = true;
  $("record").title = "recording needs a browser with MediaRecorder (and https or localhost)";
}

fetch("/api/model")
  .then((r) => r.json())
  .then((m) => {
    const fe = m.frontend;
    $("model-info").textContent = `${m.model} · ${m.quantization} · ${m.arch || "model"} · ` +
      `${fe.n_mfcc} MFCC every ${fe.hop_ms} ms · labels: ${m.labels.join(", ")}`;
  })
  .catch(() => {});

/* Microphone capture for the voice test call: the context's rate (44.1/48 kHz) resampled
   to 24 kHz mono PCM16 (what the voice WebSocket takes), posted in 20 ms frames. */
class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 24000;  // input samples per output sample
    this.position = 0;               // fractional read position into `carry`
    this.carry = new Float32Array(0);
    this.frame = new Int16Array(480);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const data = new Float32Array(this.carry.length + channel.length);
    data.set(this.carry);
    data.set(channel, this.carry.length);
    let pos = this.position;
    while (pos + 1 < data.length) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const sample = data[i] + (data[i + 1] - data[i]) * frac;  // linear interpolation
      const clipped = Math.max(-1, Math.min(1, sample));
      this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.frame.length) {
        this.port.postMessage(this.frame.buffer.slice(0));
        this.filled = 0;
      }
      pos += this.step;
    }
    const keep = Math.floor(pos);
    this.carry = data.slice(keep);
    this.position = pos - keep;
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);

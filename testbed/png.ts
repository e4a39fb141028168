/**
 * Is a screenshot really a picture? Decodes a PNG (pngjs) and measures it: dimensions, how
 * many distinct colours, and the spread of luminance. A blank or single-colour page has one
 * colour and no spread; rendered text and boxes give many of both.
 */
import { PNG } from "pngjs";

export interface PngStats {
  width: number;
  height: number;
  distinctColours: number;
  /** Standard deviation of per-pixel luminance (0..255). */
  luminanceStdDev: number;
  /** Share of pixels that differ from the most common colour (the background). */
  nonBackgroundShare: number;
}

export function pngStats(png: Buffer): PngStats {
  const img = PNG.sync.read(png);
  const counts = new Map<number, number>();
  let sum = 0;
  let sumSq = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const o = i * 4;
    const [r, g, b] = [img.data[o], img.data[o + 1], img.data[o + 2]];
    const key = (r << 16) | (g << 8) | b;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    sum += y;
    sumSq += y * y;
  }
  const mean = n ? sum / n : 0;
  const background = Math.max(0, ...counts.values());
  return {
    width: img.width,
    height: img.height,
    distinctColours: counts.size,
    luminanceStdDev: n ? Math.sqrt(Math.max(0, sumSq / n - mean * mean)) : 0,
    nonBackgroundShare: n ? 1 - background / n : 0,
  };
}

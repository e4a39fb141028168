import { PNG } from "pngjs";
import { pngStats } from "./png";

function png(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Buffer {
  const img = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const [r, g, b] = pixel(x, y);
      img.data[o] = r;
      img.data[o + 1] = g;
      img.data[o + 2] = b;
      img.data[o + 3] = 255;
    }
  return PNG.sync.write(img);
}

test("a blank image has one colour and no spread; one with marks has both", () => {
  const blank = pngStats(png(40, 30, () => [255, 255, 255]));
  expect(blank).toMatchObject({ width: 40, height: 30, distinctColours: 1, nonBackgroundShare: 0 });
  expect(blank.luminanceStdDev).toBeCloseTo(0, 3);
  const marked = pngStats(png(40, 30, (x, y) => (y % 10 < 3 && x > 5 ? [20, 20, 20] : x < 3 ? [11, 93, 30] : [255, 255, 255])));
  expect(marked.distinctColours).toBe(3);
  expect(marked.luminanceStdDev).toBeGreaterThan(50);
  expect(marked.nonBackgroundShare).toBeGreaterThan(0.2);
});

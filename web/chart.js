// A small inline SVG chart of one source's last day, in 24 hourly columns: messages fetched
// as bars (red when a sync in that hour failed), the longest sync time as a line. No library:
// two dozen points need none.
const NS = "http://www.w3.org/2000/svg";
const WIDTH = 240;
const HEIGHT = 48;
const HOURS = 24;
const HOUR_MS = 3600 * 1000;

function svg(tag, attributes) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function hourly(runs, now) {
  const buckets = Array.from({ length: HOURS }, () => ({ fetched: 0, seconds: 0, failed: false, runs: 0 }));
  for (const run of runs) {
    const age = Math.floor((now - new Date(run.finished_at).getTime()) / HOUR_MS);
    if (age < 0 || age >= HOURS) continue;
    const bucket = buckets[HOURS - 1 - age];
    bucket.fetched += run.fetched;
    bucket.seconds = Math.max(bucket.seconds, run.seconds);
    bucket.failed ||= run.error_class !== null;
    bucket.runs += 1;
  }
  return buckets;
}

export function syncChart(runs, label) {
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label });
  const title = svg("title", {});
  title.textContent = label;
  chart.append(title);
  const buckets = hourly(runs, Date.now());
  const step = WIDTH / HOURS;
  const maxFetched = Math.max(1, ...buckets.map((b) => b.fetched));
  const maxSeconds = Math.max(0.001, ...buckets.map((b) => b.seconds));
  const points = [];
  buckets.forEach((bucket, i) => {
    if (!bucket.runs) return;
    const height = Math.max(1, (bucket.fetched / maxFetched) * (HEIGHT - 6));
    chart.append(svg("rect", {
      x: i * step + 1, y: HEIGHT - height, width: step - 2, height,
      class: bucket.failed ? "bar error" : "bar",
    }));
    points.push(`${(i * step + step / 2).toFixed(1)},${(HEIGHT - 3 - (bucket.seconds / maxSeconds) * (HEIGHT - 8)).toFixed(1)}`);
  });
  if (points.length > 1) chart.append(svg("polyline", { points: points.join(" "), class: "line" }));
  else if (points.length === 1) {
    const [cx, cy] = points[0].split(",");
    chart.append(svg("circle", { cx, cy, r: 2, class: "point" }));
  }
  return chart;
}

// A small inline SVG chart of one source's last day: messages per sync as bars, sync time as
// a line. No library: a few dozen points need none.
const NS = "http://www.w3.org/2000/svg";
const WIDTH = 240;
const HEIGHT = 48;

function svg(tag, attributes) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export function syncChart(runs, label) {
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label });
  const title = svg("title", {});
  title.textContent = label;
  chart.append(title);
  const dayStart = Date.now() - 24 * 3600 * 1000;
  const x = (run) => ((new Date(run.finished_at).getTime() - dayStart) / (24 * 3600 * 1000)) * (WIDTH - 4) + 2;
  const maxFetched = Math.max(1, ...runs.map((r) => r.fetched));
  const maxSeconds = Math.max(0.001, ...runs.map((r) => r.seconds));
  for (const run of runs) {
    const height = (run.fetched / maxFetched) * (HEIGHT - 4);
    chart.append(svg("rect", {
      x: x(run) - 1, y: HEIGHT - height - 1, width: 2, height: Math.max(height, 0.5),
      class: run.error_class ? "bar error" : "bar",
    }));
  }
  if (runs.length > 1) {
    const points = runs.map((r) => `${x(r).toFixed(1)},${(HEIGHT - 2 - (r.seconds / maxSeconds) * (HEIGHT - 6)).toFixed(1)}`);
    chart.append(svg("polyline", { points: points.join(" "), class: "line" }));
  }
  return chart;
}

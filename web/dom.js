// A tiny element builder: h("button", {type: "button", onclick}, "text").
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let fieldCounter = 0;

// A labelled input: returns [wrapper, input].
export function field(label, attributes = {}, help = "") {
  const id = attributes.id || `f${++fieldCounter}`;
  const helpId = help ? `${id}-help` : undefined;
  const input = h(attributes.tag || "input", { ...attributes, tag: undefined, id, "aria-describedby": helpId });
  const wrapper = h("div", { class: "field" }, h("label", { for: id }, label), input,
    help ? h("small", { id: helpId }, help) : null);
  return [wrapper, input];
}

export function when(date) {
  if (!date) return null;
  return new Date(date).toLocaleString(document.documentElement.lang);
}

export function bytes(count) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

// The tab tells a background viewer what is going on: a status dot on the favicon (grey idle, blue running,
// teal needs you) and the count of things that need them in the title.
window.agorSetStatus = (state, count, title) => {
  const size = 64;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const g = canvas.getContext("2d");
  g.fillStyle = "#0d9488";
  g.beginPath();
  g.moveTo(28, 4); g.lineTo(52, 28); g.lineTo(28, 52); g.lineTo(4, 28);
  g.closePath(); g.fill();
  g.fillStyle = { idle: "#94a3b8", running: "#2563eb", needs: "#14b8a6" }[state] || "#94a3b8";
  g.strokeStyle = "white"; g.lineWidth = 5;
  g.beginPath(); g.arc(46, 46, 14, 0, 2 * Math.PI); g.fill(); g.stroke();
  let link = document.querySelector('link[rel~="icon"]');
  if (!link) { link = document.createElement("link"); link.rel = "icon"; document.head.appendChild(link); }
  link.href = canvas.toDataURL("image/png");
  document.documentElement.dataset.agorStatus = state;
  document.title = (count ? `(${count}) ` : "") + title;
};

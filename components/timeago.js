// <time class="agor-time" datetime="ISO"> shows "5 min ago", with the full local date and time on hover.
(() => {
  const relative = (date) => {
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 45) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.round(minutes / 60);
    if (hours < 24) return `${hours} h ago`;
    const days = Math.round(hours / 24);
    if (days < 7) return `${days} d ago`;
    return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  };
  const update = () => {
    for (const el of document.querySelectorAll("time.agor-time")) {
      const date = new Date(el.dateTime);
      if (isNaN(date)) continue;
      const text = relative(date);
      const title = date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "long" });
      if (el.textContent !== text) el.textContent = text; // only on change: the observer below sees our writes
      if (el.title !== title) el.title = title;
    }
  };
  let queued = false;
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; update(); }); } };
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(soon).observe(document.body, { childList: true, subtree: true });
    update();
  });
  setInterval(update, 20000);
})();

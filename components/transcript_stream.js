// agorAppend(id, text): the text a streamed transcript entry grew by, added to that entry's element as plain text
// (a text node, never parsed as HTML): into its <pre> (shell output), else into a trailing .agor-streaming span that
// the server replaces when it draws the finished reply. A transcript scrolled to the bottom stays at the bottom.
window.agorAppend = (id, text) => {
  const entry = getHtmlElement(id);
  if (!entry) return;
  const box = entry.parentElement;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  let target = entry.querySelector("pre.agor-output, .agor-streaming");
  if (!target) {
    target = document.createElement("span");
    target.className = "agor-streaming";
    entry.appendChild(target);
  }
  target.append(text);
  if (atBottom) box.scrollTop = box.scrollHeight;
};

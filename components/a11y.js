// Names for what Quasar draws without one: its loading bar (a progressbar) is labelled once it appears.
new MutationObserver((_, observer) => {
  const bar = document.querySelector(".q-loading-bar");
  if (bar) {
    bar.setAttribute("aria-label", "Loading");
    observer.disconnect();
  }
}).observe(document.documentElement, { childList: true, subtree: true });

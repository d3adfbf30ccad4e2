// Refresh the record in place while the incident runs: fetch the page,
// swap <main>, keep the reader's scroll position and open <details>.
// `quenchRefresh()` does one refresh now (and tests await it).
(function () {
  var every = 10000;
  var timer = null;
  function swap(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var main = next.querySelector("main");
    var here = document.querySelector("main");
    if (!main || !here) { return false; }
    document.querySelectorAll("details[id]").forEach(function (d) {
      var twin = main.querySelector("#" + CSS.escape(d.id));
      if (twin) { twin.open = d.open; }
    });
    var x = window.scrollX, y = window.scrollY;
    here.replaceWith(main);
    window.scrollTo(x, y);
    document.title = next.title;
    document.body.dataset.refresh = next.body.dataset.refresh;
    return true;
  }
  function refresh() {
    return fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(swap);
  }
  function schedule(ms) {
    clearTimeout(timer);
    if (document.body.dataset.refresh !== "on") { return; }
    timer = setTimeout(function () {
      if (document.hidden) { return schedule(every); }
      refresh().then(function () { schedule(every); }, function () { schedule(every * 3); });
    }, ms);
  }
  window.quenchRefresh = refresh;
  schedule(every);
})();

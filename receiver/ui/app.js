// A little JavaScript: the alerts page refreshes itself when asked to.
// Everything works without it.
(function () {
  var box = document.getElementById("autorefresh");
  if (!box) return;
  var key = "alertmedic.autorefresh";
  box.checked = localStorage.getItem(key) === "1";
  var timer = null;
  function arm() {
    if (timer) clearTimeout(timer);
    if (box.checked) timer = setTimeout(function () { location.reload(); }, 10000);
  }
  box.addEventListener("change", function () {
    localStorage.setItem(key, box.checked ? "1" : "0");
    arm();
  });
  arm();
})();

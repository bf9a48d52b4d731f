// Written by xtomo.publish.vendor: the book's widgets load their JavaScript from this folder, not a CDN.
// RequireJS finds the widget modules in the book's own copies, from this script's URL, so it works
// from a page in any folder. html-manager's and jupyter-vuetify's modules find their fonts from
// their module's URL and from <body data-base-url>. The controls typeset labels with MathJax 2's
// MathJax.Hub.Queue; the book's MathJax is version 3, so a small Hub.Queue stands in for it.
(function () {
  var here = new URL(".", document.currentScript.src).href;
  window.requirejs.config({baseUrl: here, paths: __PATHS__});
  document.addEventListener("DOMContentLoaded", function () {
    document.body.setAttribute("data-base-url", here);
    var mathjax = window.MathJax;
    if (mathjax && mathjax.startup && !mathjax.Hub) {
      mathjax.Hub = {Queue: function (job) {
        mathjax.startup.promise.then(function () { return mathjax.typesetPromise([job[2]]); });
      }};
    }
  });
})();

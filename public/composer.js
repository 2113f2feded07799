// Roundtable: the browser refuses a message longer than this before it is sent; Socket.IO
// silently drops the whole connection on payloads near 1 MB. The server refuses anything over
// its own (configurable, smaller) limit with a message.
(function () {
  var LIMIT = 100000;
  function cap() {
    var box = document.getElementById("chat-input");
    if (box && box.maxLength !== LIMIT) box.maxLength = LIMIT;
  }
  new MutationObserver(cap).observe(document.documentElement, { childList: true, subtree: true });
  cap();
})();

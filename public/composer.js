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

// Roundtable: the composer's stop square during a run (ui/stop_square.py). While the square
// shows, Chainlit will not send; so when the person types during a run, the page asks for the
// send arrow ("composing"), and when the box is empty again while a run is live (its run bar
// has a "Stop the ..." button), it asks for the square back ("idle"). Checked every 300 ms
// (React clears the box without an input event); at most one message a second.
(function () {
  var said = null;
  var last = 0;
  function runIsLive() {
    var buttons = document.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) {
      if ((buttons[i].textContent || "").trim().indexOf("Stop the ") === 0) return true;
    }
    return false;
  }
  function tell(state) {
    var now = Date.now();
    if (state === said && now - last < 1000) return;
    said = state;
    last = now;
    window.postMessage({ roundtable: state }, window.location.origin);
  }
  setInterval(function () {
    var box = document.getElementById("chat-input");
    if (!box) return;
    var square = document.getElementById("stop-button");
    if (box.value.trim() !== "") {
      if (square) tell("composing");
    } else if (!square && runIsLive()) {
      tell("idle");
    }
  }, 300);
})();

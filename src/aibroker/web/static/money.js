/* Integer micro-units as a price, exactly as the server's `money` filter writes it
   (web/formatting.py): at least 2 decimals, up to 6 when cents would hide the amount. */
window.aibrokerMoney = function (micros) {
  "use strict";
  var n = Number(micros) || 0;
  var sign = n < 0 ? "-" : "";
  n = Math.abs(Math.round(n));
  var whole = Math.floor(n / 1e6), frac = String(n % 1e6);
  while (frac.length < 6) frac = "0" + frac;
  frac = frac.replace(/0+$/, "");
  while (frac.length < 2) frac += "0";
  return sign + "$" + whole.toLocaleString("en-US") + "." + frac;
};

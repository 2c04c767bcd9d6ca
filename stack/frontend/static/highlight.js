// A small DataPrime syntax highlighter. It builds DOM nodes with textContent only, so
// nothing in a query can ever become markup.

import { KEYWORD_CLASSES } from "./dataprime-keywords.js";

// Keyword lists come from the parser's grammar (generated file), so the UI colours exactly
// the words the validator accepts. Single-letter command aliases (`f`, `e`, `m`...) only
// count as commands right after `|` or at the start, as in the grammar.
const COMMANDS = new Set(KEYWORD_CLASSES.command);
const KEYWORDS = new Set(KEYWORD_CLASSES.keyword);
const LITERALS = new Set(KEYWORD_CLASSES.literal);

// Order matters: the first rule that matches at a position wins.
const RULES = [
  ["ws", /\s+/y],
  ["comment", /(?:\/\/|#)[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/y],
  ["string", /'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|`(?:[^`\\]|\\.)*`?/y],
  ["keypath", /(?:(?:left|right)=>)?\$[A-Za-z_]\w*(?:\.[A-Za-z_][\w]*|\[(?:'[^']*'|"[^"]*"|\d+)\])*/y],
  ["duration", /\d+(?:\.\d+)?(?:ms|us|ns|[smhdw])\b/y],
  ["number", /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y],
  ["word", /[A-Za-z_][\w]*/y],
  ["pipe", /\|/y],
  ["op", /==|!=|<=|>=|&&|\|\||~~|->|[<>~!+\-*/%=@]/y],
  ["punct", /[(),.[\]:{}]/y],
  ["other", /./y],
];

export function tokenize(text) {
  const tokens = [];
  let pos = 0;
  let commandPosition = true; // at the start or right after `|`
  while (pos < text.length) {
    for (const [type, re] of RULES) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (m && m[0].length > 0) {
        let kind = type;
        if (type === "word") {
          const lower = m[0].toLowerCase();
          const next = text.slice(re.lastIndex).match(/^\s*\(/);
          if (commandPosition && COMMANDS.has(lower)) kind = "keyword";
          else if (KEYWORDS.has(lower) || lower.startsWith("case")) kind = "keyword";
          else if (LITERALS.has(lower)) kind = "literal";
          else if (next) kind = "function";
          else kind = "ident";
        }
        tokens.push({ kind, text: m[0] });
        if (kind === "pipe") commandPosition = true;
        else if (kind !== "ws" && kind !== "comment" && !(kind === "keyword" && /^(order|sort)$/.test(m[0]))) {
          commandPosition = false;
        }
        pos = re.lastIndex;
        break;
      }
    }
  }
  return tokens;
}

/** Replace `el`'s children with the highlighted query. */
export function highlightInto(el, text) {
  el.replaceChildren();
  for (const tok of tokenize(text || "")) {
    if (tok.kind === "ws" || tok.kind === "other") {
      el.append(document.createTextNode(tok.text));
    } else {
      const span = document.createElement("span");
      span.className = `tok-${tok.kind}`;
      span.textContent = tok.text;
      el.append(span);
    }
  }
}

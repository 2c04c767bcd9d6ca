// A small DataPrime syntax highlighter. It builds DOM nodes with textContent only, so
// nothing in a query can ever become markup.

const KEYWORDS = new Set([
  "source", "filter", "f", "where", "block", "groupby", "aggregate", "agg", "count", "countby",
  "into", "orderby", "sortby", "asc", "desc", "limit", "choose", "select", "create", "add",
  "from", "remove", "distinct", "top", "bottom", "by", "dedupeby", "keep", "as", "and", "or",
  "not", "in",
]);
const LITERALS = new Set(["true", "false", "null"]);

// Order matters: the first rule that matches at a position wins.
const RULES = [
  ["ws", /\s+/y],
  ["comment", /\/\/[^\n]*/y],
  ["string", /'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|`(?:[^`\\]|\\.)*`?/y],
  ["keypath", /\$[dlm](?:\.[A-Za-z_][\w]*|\[(?:'[^']*'|"[^"]*")\])*/y],
  ["duration", /\d+(?:\.\d+)?(?:ms|us|ns|[smhdw])\b/y],
  ["number", /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y],
  ["word", /[A-Za-z_][\w]*/y],
  ["pipe", /\|/y],
  ["op", /==|!=|<=|>=|&&|\|\||[<>~!+\-*/%=]/y],
  ["punct", /[(),.[\]:]/y],
  ["other", /./y],
];

export function tokenize(text) {
  const tokens = [];
  let pos = 0;
  while (pos < text.length) {
    for (const [type, re] of RULES) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (m && m[0].length > 0) {
        let kind = type;
        if (type === "word") {
          const lower = m[0].toLowerCase();
          const next = text.slice(re.lastIndex).match(/^\s*\(/);
          if (KEYWORDS.has(lower)) kind = "keyword";
          else if (LITERALS.has(lower)) kind = "literal";
          else if (next) kind = "function";
          else kind = "ident";
        }
        tokens.push({ kind, text: m[0] });
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

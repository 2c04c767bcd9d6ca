"""The DataPrime function registry shared by the validator, the executor and the docs.

Each entry records the signature (argument names and types, return type), whether the
function also has method notation (`$d.msg.startsWith('x')`), a one-line description in our
own words, and the public reference page it follows. `docs/dataprime.md` is generated from
this table (`python -m stack.dataprime.docs`), and a test fails when the two drift apart.

Types: string, number, bool, timestamp, interval, regexp, array, any. A trailing `?` marks
an optional argument, a trailing `...` a repeatable one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

REFERENCE = "https://coralogix.com/docs/dataprime/language-reference/functions-reference"


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    optional: bool = False
    variadic: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    category: str
    params: tuple[Param, ...]
    returns: str
    method: bool
    aggregation: bool
    description: str

    @property
    def url(self) -> str:
        return f"{REFERENCE}/{self.category}/{self.name.lower()}/"

    @cached_property
    def min_args(self) -> int:
        return sum(1 for p in self.params if not p.optional and not p.variadic) + sum(
            1 for p in self.params if p.variadic and not p.optional
        )

    @cached_property
    def max_args(self) -> int:
        return 64 if any(p.variadic for p in self.params) else len(self.params)

    def param_for(self, index: int) -> Param | None:
        if index < len(self.params):
            return self.params[index]
        if self.params and self.params[-1].variadic:
            return self.params[-1]
        return None

    def signature(self) -> str:
        parts = []
        for p in self.params:
            mark = "?" if p.optional else ""
            dots = "..." if p.variadic else ""
            parts.append(f"{p.name}{mark}: {p.type}{dots}")
        return f"{self.name}({', '.join(parts)}): {self.returns}"


def _params(spec: str) -> tuple[Param, ...]:
    out = []
    for raw in filter(None, (s.strip() for s in spec.split(","))):
        name, _, typ = raw.partition(":")
        variadic = typ.endswith("...")
        typ = typ.removesuffix("...")
        optional = name.endswith("?")
        out.append(Param(name.rstrip("?"), typ, optional, variadic))
    return tuple(out)


# (name, category, params, returns, method notation, description in our own words)
_SCALARS: tuple[tuple[str, str, str, str, bool, str], ...] = (
    # string
    ("contains", "string", "value:string, substring:string", "bool", True,
     "True when the text holds the substring anywhere (case-sensitive)."),
    ("startsWith", "string", "value:string, prefix:string", "bool", True,
     "True when the text begins with the prefix."),
    ("endsWith", "string", "value:string, suffix:string", "bool", True,
     "True when the text finishes with the suffix."),
    ("matches", "string", "value:string, pattern:regexp", "bool", True,
     "True when the regular expression matches somewhere in the text."),
    ("toLowerCase", "string", "value:string", "string", True,
     "The text in lower case."),
    ("toUpperCase", "string", "value:string", "string", True,
     "The text in upper case."),
    ("length", "string", "value:string", "number", True,
     "Number of characters in the text."),
    ("trim", "string", "value:string", "string", True,
     "The text without leading and trailing whitespace."),
    ("ltrim", "string", "value:string", "string", True,
     "The text without leading whitespace."),
    ("rtrim", "string", "value:string", "string", True,
     "The text without trailing whitespace."),
    ("concat", "string", "value:any...", "string", True,
     "Joins its arguments into one string."),
    ("substr", "string", "value:string, from:number, length?:number", "string", True,
     "A slice of the text starting at a zero-based offset."),
    ("indexOf", "string", "value:string, substring:string", "number", True,
     "Zero-based position of the first occurrence, or -1."),
    ("splitParts", "string", "value:string, delimiter:string, index:number", "string", True,
     "The index-th (1-based) piece of the text split on the delimiter."),
    ("pad", "string", "value:string, length:number, fill:string", "string", True,
     "Left-pads the text to the given length (same as padLeft)."),
    ("padLeft", "string", "value:string, length:number, fill:string", "string", True,
     "Left-pads the text to the given length."),
    ("regexpSplitParts", "string", "value:string, delimiter:regexp, index:number", "string",
     True, "The index-th (1-based) piece of the text split on a regex delimiter."),
    ("padRight", "string", "value:string, length:number, fill:string", "string", True,
     "Right-pads the text to the given length."),
    ("chr", "string", "code:number", "string", True,
     "The character for a Unicode code point."),
    ("codepoint", "string", "value:string", "number", True,
     "The Unicode code point of the first character."),
    ("toString", "string", "value:any", "string", True,
     "Any value rendered as text."),
    ("encodeBase64", "string", "value:string", "string", True,
     "The text encoded as Base64."),
    ("decodeBase64", "string", "value:string", "string", True,
     "The text decoded from Base64."),
    ("urlEncode", "string", "value:string", "string", True,
     "The text percent-encoded for use in a URL."),
    ("urlDecode", "string", "value:string", "string", True,
     "Percent-encoding in the text decoded."),
    # number
    ("abs", "number", "value:number", "number", True, "Absolute value."),
    ("ceil", "number", "value:number", "number", True, "Smallest integer not below the value."),
    ("floor", "number", "value:number", "number", True, "Largest integer not above the value."),
    ("round", "number", "value:number, digits?:number", "number", True,
     "The value rounded to the given number of decimals (0 by default)."),
    ("sqrt", "number", "value:number", "number", True, "Square root."),
    ("power", "number", "value:number, exponent:number", "number", True,
     "The value raised to the exponent."),
    ("ln", "number", "value:number", "number", True, "Natural logarithm."),
    ("log", "number", "base:number, value:number", "number", False,
     "Logarithm of the value in the given base."),
    ("log2", "number", "value:number", "number", True, "Base-2 logarithm."),
    ("exp", "number", "value:number", "number", True, "e raised to the value."),
    ("toNumber", "number", "value:any", "number", True,
     "The value converted to a number (null when it is not numeric)."),
    ("fromBase", "number", "value:string, base:number", "number", True,
     "Parses digits written in the given base."),
    ("toBase", "number", "value:number, base:number", "string", True,
     "Writes the number in the given base."),
    ("random", "number", "", "number", False, "A random number between 0 and 1."),
    ("e", "number", "", "number", False, "Euler's number."),
    ("pi", "number", "", "number", False, "The constant pi."),
    ("mod", "number", "value:number, divisor:number", "number", True,
     "Remainder of the division."),
    ("randomInt", "number", "upper:number", "number", False,
     "A random integer from 0 up to (not including) the bound."),
    # time
    ("now", "time", "", "timestamp", False, "The time the query runs."),
    ("roundTime", "time", "time:timestamp, interval:interval", "timestamp", True,
     "The timestamp rounded down to a multiple of the interval (time buckets)."),
    ("roundInterval", "time", "value:interval, unit:string", "interval", True,
     "The interval rounded to whole units."),
    ("formatTimestamp", "time", "time:timestamp, format?:string, tz?:string", "string", True,
     "Renders a timestamp as text in the given format and time zone."),
    ("parseTimestamp", "time", "text:string, format?:string, tz?:string", "timestamp", True,
     "Reads a timestamp from text."),
    ("parseInterval", "time", "text:string", "interval", True,
     "Reads an interval such as '1h30m' from text."),
    ("formatInterval", "time", "value:interval, unit?:string", "string", True,
     "Renders an interval as text."),
    ("diffTime", "time", "to:timestamp, from:timestamp", "interval", True,
     "The interval between two timestamps."),
    ("addTime", "time", "time:timestamp, interval:interval", "timestamp", True,
     "The timestamp shifted by the interval."),
    ("addInterval", "time", "left:interval, right:interval", "interval", True,
     "Sum of two intervals."),
    ("subtractInterval", "time", "left:interval, right:interval", "interval", True,
     "Difference of two intervals."),
    ("subtractTime", "time", "time:timestamp, interval:interval", "timestamp", True,
     "The timestamp moved back by the interval."),
    ("multiplyInterval", "time", "value:interval, factor:number", "interval", True,
     "The interval scaled by a factor."),
    ("toInterval", "time", "value:number, unit?:string", "interval", True,
     "A number of time units as an interval."),
    ("toIso8601DateTime", "time", "time:timestamp", "string", True,
     "Deprecated: the timestamp as ISO-8601 text."),
    ("parseToTimestamp", "time", "text:string, format?:string, tz?:string", "timestamp", True,
     "Deprecated name of parseTimestamp."),
    ("timeRound", "time", "time:timestamp, interval:interval", "timestamp", True,
     "Deprecated name of roundTime."),
    ("extractTime", "time", "time:timestamp, unit:string, tz?:string", "number", True,
     "One component (hour, day, ...) of a timestamp."),
    ("fromUnixTime", "time", "value:number, unit?:string", "timestamp", True,
     "A timestamp from a Unix epoch number."),
    ("toUnixTime", "time", "time:timestamp, unit?:string", "number", True,
     "A timestamp as a Unix epoch number."),
    # ip / uuid
    ("ipInSubnet", "ip", "ip:string, subnet:string", "bool", True,
     "True when the IP address lies inside the CIDR subnet."),
    ("ipPrefix", "ip", "ip:string, bits:number", "string", True,
     "The subnet of the address with the given prefix length."),
    ("randomUuid", "uuid", "", "string", False, "A new random UUID."),
    ("uuid", "uuid", "", "string", False, "Deprecated name of randomUuid."),
    ("isUuid", "uuid", "value:string", "bool", True, "True when the text is a UUID."),
    # array
    ("arrayContains", "array", "array:array, element:any", "bool", True,
     "True when the array holds the element."),
    ("arrayLength", "array", "array:array", "number", True, "Number of elements."),
    ("arrayAppend", "array", "array:array, element:any", "array", True,
     "The array with one element added at the end."),
    ("arrayConcat", "array", "array:array, other:array", "array", True,
     "Two arrays joined."),
    ("arrayRemove", "array", "array:array, element:any", "array", True,
     "The array without the element."),
    ("arraySort", "array", "array:array, desc?:bool", "array", True, "The array sorted."),
    ("arrayJoin", "array", "array:array, delimiter:string", "string", True,
     "Array elements joined into text."),
    ("arraySplit", "array", "value:string, delimiter:string", "array", True,
     "Text split into an array on the delimiter."),
    ("setUnion", "array", "array:array, other:array", "array", True,
     "Distinct elements of either array."),
    ("setIntersection", "array", "array:array, other:array", "array", True,
     "Distinct elements present in both arrays."),
    # general
    ("if", "general", "condition:bool, then:any, else?:any", "any", False,
     "The second argument when the condition holds, else the third (or null)."),
    ("firstNonNull", "general", "value:any...", "any", False,
     "The first argument that is not null."),
    ("ifNull", "general", "value:any, default:any", "any", True,
     "The value, or the default when it is null."),
    ("recordLocation", "general", "", "string", False,
     "Where the record is stored (archive or frequent search)."),
)  # fmt: skip

# aggregation functions (not methods; only in groupby/aggregate/top/bottom)
_AGGREGATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("count", "value?:any", "number", "Number of rows, or of non-null values when given one."),
    ("count_if", "condition:bool, value?:any", "number", "Number of rows where it holds."),
    ("distinct_count", "value:any", "number", "Number of distinct non-null values."),
    ("distinct_count_if", "condition:bool, value:any", "number",
     "Distinct values among rows where the condition holds."),
    ("sum", "value:number", "number", "Sum of the values."),
    ("avg", "value:number", "number", "Arithmetic mean of the values."),
    ("min", "value:any", "any", "Smallest value."),
    ("max", "value:any", "any", "Largest value."),
    ("min_by", "value:any, by:any", "any", "The value from the row with the smallest key."),
    ("max_by", "value:any, by:any", "any", "The value from the row with the largest key."),
    ("percentile", "percentile:number, value:number, error?:number", "number",
     "Approximate percentile (0-1) of the values."),
    ("median", "value:number", "number", "The 50th percentile of the values."),
    ("stddev", "value:number", "number", "Population standard deviation."),
    ("variance", "value:number", "number", "Population variance."),
    ("sample_stddev", "value:number", "number", "Sample standard deviation."),
    ("sample_variance", "value:number", "number", "Sample variance."),
    ("any_value", "value:any", "any", "Some non-null value of the group."),
    ("collect", "value:any, distinct?:bool, max?:number", "array",
     "The group's values gathered into an array."),
    ("approx_count_distinct", "value:any", "number", "Approximate number of distinct values."),
)  # fmt: skip

FUNCTIONS: dict[str, Function] = {}
for _name, _cat, _spec, _ret, _method, _desc in _SCALARS:
    FUNCTIONS[_name] = Function(_name, _cat, _params(_spec), _ret, _method, False, _desc)
for _name, _spec, _ret, _desc in _AGGREGATIONS:
    FUNCTIONS[_name] = Function(_name, "aggregation", _params(_spec), _ret, False, True, _desc)

AGGREGATIONS: dict[str, tuple[int, int]] = {
    f.name: (f.min_args, f.max_args) for f in FUNCTIONS.values() if f.aggregation
}
SCALAR_FUNCTIONS: dict[str, tuple[int, int]] = {
    f.name: (f.min_args, f.max_args) for f in FUNCTIONS.values() if not f.aggregation
}
ALL_FUNCTIONS: dict[str, tuple[int, int]] = {**SCALAR_FUNCTIONS, **AGGREGATIONS}

"""Prompt templates rendered by Jinja2's sandbox: a template never runs code.

The environment is stricter than Jinja's own sandbox: no globals (no `range`, `lipsum`,
`cycler`...), no attribute of any object other than a dict key (`user.name` reads a dict),
no call of any function or method (checked when the template is written, so a template
that tries is refused at write time with the line), a short list of filters, bounded `*`
and `**`, and a bounded output. An undefined variable is an error (StrictUndefined),
never a silent empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from aibroker.errors import InvalidRequest

MAX_OUTPUT_CHARS = 200_000
MAX_LOOP_STEPS = 100_000
MAX_VARIABLES = 100
VARIABLE_TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Filters that cannot allocate more than their input (no center / indent / format / wordwrap widths).
SAFE_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "int", "join",
    "last", "length", "list", "lower", "max", "min", "reverse", "round", "sort", "string", "striptags", "sum",
    "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount",
)


class TemplateError(InvalidRequest):
    """A template (or its variables) the broker refuses: always a 400 with a code."""


class _StepBudget:
    def __init__(self) -> None:
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_LOOP_STEPS:
            raise SecurityError(f"the template iterates more than {MAX_LOOP_STEPS} times")


class _CountedList(list):  # type: ignore[type-arg]
    """A list variable whose iteration counts against the render's step budget."""

    budget: _StepBudget

    def __iter__(self):  # type: ignore[no-untyped-def]
        for item in super().__iter__():
            self.budget.tick()
            yield item


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False  # only dict keys (Jinja falls back to item lookup for them)

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and (not isinstance(right, (int, float)) or abs(right) > 64):
            raise SecurityError("exponents are limited to 64 in templates")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_OUTPUT_CHARS:
                    raise SecurityError("the template builds a value larger than the output limit")
        return super().call_binop(context, operator, left, right)


def _make_environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    return env


ENV = _make_environment()


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: str = "any"
    required: bool = True
    default: Any = None
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if not self.required:
            out["default"] = self.default
        if self.description:
            out["description"] = self.description
        return out


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def parse_variables(raw: Any) -> list[Variable]:
    """The declared variables: a list of names or of `{"name", "type"?, "required"?, "default"?,
    "description"?}`, or an object of name -> that spec. A variable with a default is optional."""
    if raw is None:
        return []
    items: list[Any]
    if isinstance(raw, dict):
        items = [{"name": k, **(v if isinstance(v, dict) else {"type": v})} for k, v in raw.items()]
    elif isinstance(raw, list):
        items = raw
    else:
        raise TemplateError("'variables' must be a list (of names or {name, type, required, default}).", param="variables",
                            code="invalid_template_variables")
    if len(items) > MAX_VARIABLES:
        raise TemplateError(f"A template declares at most {MAX_VARIABLES} variables.", param="variables", code="invalid_template_variables")
    found: dict[str, Variable] = {}
    for item in items:
        spec = {"name": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not _NAME.match(spec["name"]):
            raise TemplateError("Each variable needs a 'name' made of letters, digits and '_' (not starting with a digit).",
                                param="variables", code="invalid_template_variables")
        unknown = set(spec) - {"name", "type", "required", "default", "description"}
        if unknown:
            raise TemplateError(f"Unknown field(s) {sorted(unknown)} in variable '{spec['name']}'.", param="variables",
                                code="invalid_template_variables")
        kind = spec.get("type", "any")
        if kind not in VARIABLE_TYPES:
            raise TemplateError(f"Variable '{spec['name']}': type must be one of {', '.join(VARIABLE_TYPES)}.",
                                param="variables", code="invalid_template_variables")
        has_default = "default" in spec
        required = spec.get("required", not has_default)
        if not isinstance(required, bool):
            raise TemplateError(f"Variable '{spec['name']}': 'required' must be true or false.", param="variables",
                                code="invalid_template_variables")
        if has_default and spec["default"] is not None and not _type_ok(kind, spec["default"]):
            raise TemplateError(f"Variable '{spec['name']}': the default is not a {kind}.", param="variables",
                                code="invalid_template_variables")
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            raise TemplateError(f"Variable '{spec['name']}': 'description' must be text.", param="variables",
                                code="invalid_template_variables")
        if spec["name"] in found:
            raise TemplateError(f"Variable '{spec['name']}' is declared twice.", param="variables", code="invalid_template_variables")
        found[spec["name"]] = Variable(spec["name"], kind, required, spec.get("default"), description)
    return list(found.values())


def _forbidden(tree: nodes.Template) -> None:
    for node in tree.find_all((nodes.Call, nodes.Getattr)):
        if isinstance(node, nodes.Call):
            raise TemplateError(f"line {node.lineno}: templates cannot call functions or methods; use a filter "
                                f"({', '.join(SAFE_FILTERS[:6])}, ...).", param="prompt", code="template_forbidden",
                                extra={"line": node.lineno})
        if node.attr.startswith("_"):
            raise TemplateError(f"line {node.lineno}: access to the attribute '{node.attr}' is refused by the sandbox.",
                                param="prompt", code="template_forbidden", extra={"line": node.lineno})


def check_template(prompt: str, declared: list[Variable] | None) -> list[Variable]:
    """Compile `prompt` (400 naming the line on a syntax error or a forbidden construct) and
    return its variables: the declared ones, checked against what the text uses, or, when
    none are declared, every name the text uses (required, any type)."""
    try:
        tree = ENV.parse(prompt)
        ENV.compile(tree)  # unknown filters and tests are compile-time errors
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error at line {exc.lineno}: {exc.message}", param="prompt",
                            code="template_syntax_error", extra={"line": exc.lineno}) from None
    _forbidden(tree)
    used = meta.find_undeclared_variables(tree)
    if declared is None:
        return [Variable(name) for name in sorted(used)]
    names = {v.name for v in declared}
    missing = sorted(used - names)
    if missing:
        raise TemplateError(f"The template uses variables it does not declare: {', '.join(missing)}.",
                            param="variables", code="template_variable_undeclared", extra={"variables": missing})
    return declared


def _counted(value: Any, budget: _StepBudget) -> Any:
    if isinstance(value, list):
        counted = _CountedList(_counted(v, budget) for v in value)
        counted.budget = budget
        return counted
    if isinstance(value, dict):
        return {k: _counted(v, budget) for k, v in value.items()}
    return value


def bind_variables(declared: list[Variable], given: Any) -> dict[str, Any]:
    """The values to render with: 400 for an unknown, missing or mistyped variable."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise TemplateError("'template.variables' must be an object of name -> value.", param="template.variables",
                            code="invalid_template_variables")
    by_name = {v.name: v for v in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise TemplateError(f"Unknown template variable(s): {', '.join(unknown)}. Declared: {', '.join(by_name) or 'none'}.",
                            param="template.variables", code="template_variable_unknown", extra={"variables": unknown})
    values: dict[str, Any] = {}
    for var in declared:
        if var.name in given:
            value = given[var.name]
            if not _type_ok(var.type, value):
                raise TemplateError(f"Template variable '{var.name}' must be a {var.type}.",
                                    param=f"template.variables.{var.name}", code="template_variable_invalid")
            values[var.name] = value
        elif var.required:
            raise TemplateError(f"The template needs the variable '{var.name}'.", param=f"template.variables.{var.name}",
                                code="template_variable_missing", extra={"variable": var.name})
        elif var.default is not None:
            values[var.name] = var.default
    return values


def render(prompt: str, declared: list[Variable], given: Any) -> str:
    """The template's text with `given` variables (checked by `bind_variables`), sandboxed."""
    values = bind_variables(declared, given)
    budget = _StepBudget()
    values = {k: _counted(v, budget) for k, v in values.items()}
    out: list[str] = []
    size = 0
    try:
        for piece in ENV.from_string(prompt).generate(**values):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(f"The rendered template is longer than {MAX_OUTPUT_CHARS} characters.",
                                    code="template_too_large")
            out.append(piece)
    except UndefinedError as exc:
        raise TemplateError(f"The template needs a value it was not given: {exc.message}", param="template.variables",
                            code="template_variable_missing") from None
    except SecurityError as exc:
        raise TemplateError(f"Refused by the template sandbox: {exc}", code="template_forbidden") from None
    except TemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure of the template's own logic is the caller's 400
        raise TemplateError(f"The template failed to render: {type(exc).__name__}: {exc}"[:500],
                            code="template_render_error") from None
    return "".join(out)

"""Whether a metric-math alarm of the template would be in ALARM, given what CloudWatch holds for one period.

Evaluates the alarm's own `Metrics` (its MetricStat queries and its returned expression) the way
CloudWatch does for the functions the template uses: a query with no data is missing, FILL(m, v)
fills it, IF(c, a, b) takes one branch. Anything else in an expression fails the evaluation, so a
template that starts using another function needs this extended, not silently misread.
"""

import ast
import math
import operator
import re
from collections import Counter

COMPARISONS = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def in_alarm(alarm: dict, held: dict[str, Counter], parameters: dict[str, float]) -> bool:
    """`held`: metric name -> {sorted (dimension, value) pairs: sum}, as `expectations.metric_totals` gives.
    `parameters`: the template's parameters by name (their values for this stack)."""
    props = alarm["Properties"]
    values: dict[str, float | None] = {}
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert query["MetricStat"]["Stat"] == "Sum"
            key = tuple(sorted((d["Name"], str(d["Value"])) for d in metric.get("Dimensions", [])))
            values[query["Id"]] = held.get(metric["MetricName"], Counter()).get(key)
    (returned,) = [query for query in props["Metrics"] if query.get("ReturnData")]
    expression = returned["Expression"]
    if isinstance(expression, dict):  # !Sub of parameters
        expression = re.sub(r"\$\{(\w+)\}", lambda match: str(parameters[match[1]]), expression["Fn::Sub"])
    result = evaluate(expression, values)
    if result is None or math.isnan(result):
        return props["TreatMissingData"] == "breaching"
    threshold = props["Threshold"]
    threshold = parameters[threshold["Ref"]] if isinstance(threshold, dict) else threshold
    return COMPARISONS[props["ComparisonOperator"]](result, float(threshold))


class _Branches(ast.NodeTransformer):
    """IF(c, a, b) -> (a if c else b): CloudWatch evaluates one branch (no division by zero in the other)."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "IF":
            condition, yes, no = node.args
            return ast.IfExp(test=condition, body=yes, orelse=no)
        return node


ALLOWED = (ast.Expression, ast.BinOp, ast.Compare, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant,
           ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Gt, ast.GtE, ast.Lt, ast.LtE)


def evaluate(expression: str, values: dict[str, float | None]) -> float | None:
    tree = ast.fix_missing_locations(_Branches().visit(ast.parse(expression, mode="eval")))
    for node in ast.walk(tree):
        assert isinstance(node, ALLOWED), f"not modelled: {ast.dump(node)}"
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name) and node.func.id == "FILL", ast.dump(node)
    scope = dict(values) | {"FILL": lambda value, fill: fill if value is None else value}
    try:
        return eval(compile(tree, "<alarm>", "eval"), {"__builtins__": {}}, scope)  # noqa: S307 - checked above
    except TypeError:  # arithmetic on a missing value: the expression has no data point
        return None

"""Resolve the CloudFormation intrinsics our template uses (Ref, GetAtt, Sub, Join) against a deployed stack.

Used only for what moto's CloudFormation skips or drops; anything unknown fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolvable(Exception):
    """A reference to something that does not exist (yet)."""


class Resolver:
    def __init__(self, refs: dict[str, Any], get_att: Callable[[str, str], Any]):
        self.refs = refs  # parameters, pseudo parameters and logical ids → values
        self.get_att = get_att

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in self.refs or self.refs[name] is None:
            raise Unresolvable(f"Ref {name}")
        return self.refs[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attr)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
            if key.startswith("Fn::") or key == "Condition":
                raise Unresolvable(f"intrinsic {key} is not supported by the local stack")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def condition(self, name: str, conditions: dict[str, Any]) -> bool:
        """Evaluate the template condition ``name`` (Fn::Equals/Not/And/Or over Refs and other conditions)."""
        if name not in conditions:
            raise Unresolvable(f"condition {name}")

        def value(node: Any) -> Any:
            if isinstance(node, dict) and len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Condition":
                    return self.condition(arg, conditions)
                if key == "Fn::Equals":
                    return str(value(arg[0])) == str(value(arg[1]))
                if key == "Fn::Not":
                    return not value(arg[0])
                if key == "Fn::And":
                    return all(value(a) for a in arg)
                if key == "Fn::Or":
                    return any(value(a) for a in arg)
            return self.resolve(node)

        return bool(value(conditions[name]))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        # ``${!Literal}`` is CloudFormation's escape for a literal ``${Literal}`` (Athena's projection templates).
        return _SUB.sub(one, text).replace("${!", "${")


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """DefinitionSubstitutions by exact ``${Key}`` replacement, as Step Functions does.

    (moto's Fn::Sub uses string.Template, which would turn ``$$.Map.Item.Value`` into ``$.Map…``.)
    """
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    left = re.findall(r"\$\{[A-Za-z0-9_]+\}", definition)
    if left:
        raise Unresolvable(f"state machine definition has unsubstituted {sorted(set(left))}")
    return definition

"""Istio YAML builders for Conformance tests (plain text, as users write it)."""
import json


def gateway(port: int, hosts=("*",), name: str = "gw", namespace: str = "istio-system", selector=None) -> str:
    selector = selector or {"istio": "ingressgateway"}
    host_lines = "\n".join(f'    - "{h}"' for h in hosts)
    selector_lines = "\n".join(f"    {k}: {v}" for k, v in selector.items())
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: {namespace}
spec:
  selector:
{selector_lines}
  servers:
  - port:
      number: {port}
      name: http
      protocol: HTTP
    hosts:
{host_lines}
"""


def static_service(host: str, port: int, endpoints, name: str, namespace: str = "istio-system") -> str:
    """A STATIC ServiceEntry; endpoints = [(address, port, labels)]."""
    lines = []
    for address, endpoint_port, labels in endpoints:
        lines.append(f"  - address: {address}\n    ports:\n      http: {endpoint_port}")
        if labels:
            lines.append("    labels:\n" + "\n".join(f"      {k}: {v}" for k, v in labels.items()))
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: {namespace}
spec:
  hosts:
  - {host}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: {port}
    name: http
    protocol: HTTP
  endpoints:
""" + "\n".join(lines) + "\n"


# MARK: - Generic resources (block YAML from Python values)


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML for dicts/lists/scalars; strings are double-quoted (JSON escapes are YAML)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = to_yaml(item, indent + 1)
                out.append(f"{pad}- {nested.lstrip()}")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
        return "".join(out)
    return pad + _scalar(value) + "\n"


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value))


def resource(kind: str, name: str, spec: dict, namespace: str = "istio-system") -> str:
    """One Istio resource document."""
    return to_yaml({"apiVersion": "networking.istio.io/v1", "kind": kind,
                    "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def gateway_servers(servers: list[dict], name: str = "gw", namespace: str = "istio-system", selector=None) -> str:
    """A Gateway with explicit servers (`[{port: {...}, hosts: [...], tls: {...}}]`)."""
    return resource("Gateway", name, {"selector": selector or {"istio": "ingressgateway"}, "servers": servers}, namespace)


def service_entry(name: str, hosts, ports: list[dict], resolution: str = "STATIC", endpoints=None,
                  namespace: str = "istio-system", **extra) -> str:
    """A ServiceEntry; `endpoints` are WorkloadEntry-shaped dicts."""
    spec = {"hosts": list(hosts), "location": "MESH_INTERNAL", "resolution": resolution, "ports": ports}
    if endpoints:
        spec["endpoints"] = endpoints
    spec.update(extra)
    return resource("ServiceEntry", name, spec, namespace)


def http_port(number: int, name: str = "http", target_port: int | None = None, protocol: str = "HTTP") -> dict:
    port = {"number": number, "name": name, "protocol": protocol}
    if target_port:
        port["targetPort"] = target_port
    return port


def virtual_service(name: str, hosts, http=None, gateways=("gw",), namespace: str = "istio-system", **extra) -> str:
    spec = {"hosts": list(hosts), "gateways": list(gateways)}
    if http is not None:
        spec["http"] = http
    spec.update(extra)
    return resource("VirtualService", name, spec, namespace)


def destination_rule(name: str, host: str, subsets: dict | None = None, namespace: str = "istio-system", **extra) -> str:
    """`subsets` maps subset name → labels (or → {"labels": ..., "trafficPolicy": ...})."""
    spec = {"host": host}
    if subsets:
        spec["subsets"] = [{"name": key, **(value if "labels" in value else {"labels": value})}
                           for key, value in subsets.items()]
    spec.update(extra)
    return resource("DestinationRule", name, spec, namespace)


def route_to(host: str, port: int | None = None, subset: str | None = None, weight: int | None = None, **extra) -> dict:
    """One HTTPRouteDestination."""
    destination = {"host": host}
    if port:
        destination["port"] = {"number": port}
    if subset:
        destination["subset"] = subset
    result = {"destination": destination}
    if weight is not None:
        result["weight"] = weight
    result.update(extra)
    return result

"""Istio YAML builders for Conformance tests (plain text, as users write it)."""


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

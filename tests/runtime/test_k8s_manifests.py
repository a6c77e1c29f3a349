"""launch/k8s/: valid Kubernetes objects (checked against the API's
schemas, offline) that fit together: labels, selectors, ports, the
Service the TF_CONFIG names, the NetworkPolicy docs/cluster.md asks for."""

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from impala_tf import launch

K8S = Path(__file__).resolve().parents[2] / "launch" / "k8s"
# The oldest Kubernetes with the pod-index label the actors read, and the
# newest the validator knows.
VERSIONS = ("1.28", kubernetes_validate.latest_version())


def _objects() -> list[dict]:
  return [doc for path in sorted(K8S.glob("*.yaml"))
          for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(kind: str, component: str = None) -> dict:
  found = [o for o in _objects() if o["kind"] == kind and (
      component is None or
      o["metadata"]["labels"]["app.kubernetes.io/component"] == component)]
  assert len(found) == 1, (kind, component, found)
  return found[0]


def _matches(selector: dict, labels: dict) -> bool:
  return all(labels.get(k) == v for k, v in selector.items())


def _container(workload: dict) -> dict:
  (container,) = workload["spec"]["template"]["spec"]["containers"]
  return container


def _env(container: dict) -> dict:
  return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_against_the_api_schema(version):
  objects = _objects()
  assert {o["kind"] for o in objects} == {
      "Namespace", "NetworkPolicy", "ConfigMap", "Service", "StatefulSet"}
  for obj in objects:
    # strict: an unknown or misspelt field is an error too.
    kubernetes_validate.validate(obj, version, strict=True)


def test_files_apply_in_order_namespace_first():
  # `kubectl apply -f launch/k8s/` applies files in name order.
  first = sorted(K8S.glob("*.yaml"))[0]
  (namespace,) = yaml.safe_load_all(first.read_text())
  assert namespace["kind"] == "Namespace"
  for obj in _objects():
    if obj["kind"] != "Namespace":
      assert obj["metadata"]["namespace"] == namespace["metadata"]["name"]


def test_the_learner_service_reaches_the_learner_at_the_tf_config_address():
  service = _one("Service", "learner")
  learner = _one("StatefulSet", "learner")
  # Never a LoadBalancer or NodePort: the port has no authentication.
  assert service["spec"]["type"] == "ClusterIP"
  labels = learner["spec"]["template"]["metadata"]["labels"]
  assert _matches(service["spec"]["selector"], labels)
  assert _matches(learner["spec"]["selector"]["matchLabels"], labels)
  assert learner["spec"]["replicas"] == 1  # One run directory, one learner.
  (port,) = service["spec"]["ports"]
  container = _container(learner)
  (container_port,) = container["ports"]
  assert port["targetPort"] == container_port["name"]
  tf_config = json.loads(_env(container)["TF_CONFIG"]["value"])
  assert tf_config["task"] == {"type": "learner", "index": 0}
  assert tf_config["cluster"]["learner"] == [
      f"{service['metadata']['name']}:{port['port']}"]
  assert port["port"] == container_port["containerPort"]
  # A restarted pod takes over its predecessor's lock by itself
  # (run_lock.py): forcing would also take a live learner's.
  assert "--force_unlock" not in container["args"]
  # The run directory is on the claimed volume, so a new pod resumes it.
  logdir = next(a.split("=", 1)[1] for a in container["args"]
                if a.startswith("--logdir="))
  (claim,) = learner["spec"]["volumeClaimTemplates"]
  mount = next(m for m in container["volumeMounts"]
               if m["name"] == claim["metadata"]["name"])
  assert logdir.startswith(mount["mountPath"] + "/")


def test_each_actor_gets_its_index_and_the_learner_address():
  actors = _one("StatefulSet", "actor")
  labels = actors["spec"]["template"]["metadata"]["labels"]
  assert _matches(actors["spec"]["selector"]["matchLabels"], labels)
  assert actors["spec"]["podManagementPolicy"] == "Parallel"
  headless = next(o for o in _objects() if o["kind"] == "Service" and
                  o["metadata"]["name"] == actors["spec"]["serviceName"])
  assert headless["spec"]["clusterIP"] == "None"
  container = _container(actors)
  names = [e["name"] for e in container["env"]]
  env = _env(container)
  # Kubernetes expands $(ACTOR_INDEX) only if it is defined before.
  assert names.index("ACTOR_INDEX") < names.index("TF_CONFIG")
  assert env["ACTOR_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
      "metadata.labels['apps.kubernetes.io/pod-index']")
  learner_tf_config = json.loads(
      _env(_container(_one("StatefulSet", "learner")))["TF_CONFIG"]["value"])
  for index in (0, 7):
    tf_config = json.loads(
        env["TF_CONFIG"]["value"].replace("$(ACTOR_INDEX)", str(index)))
    assert tf_config["task"] == {"type": "actor", "index": index}
    assert tf_config["cluster"] == learner_tf_config["cluster"]


def test_learner_and_actors_read_the_same_flags():
  config_map = _one("ConfigMap")
  flags = config_map["data"]["flags"].split()
  for flag in flags:
    name = re.fullmatch(r"--(\w+)=.+", flag).group(1)
    assert name in launch.FLAGS, flag  # A flag of impala_tf.launch.
  workloads = [_one("StatefulSet", c) for c in ("learner", "actor")]
  for workload in workloads:
    container = _container(workload)
    assert container["command"] == ["python", "-m", "impala_tf.launch"]
    flagfile = next(a.split("=", 1)[1] for a in container["args"]
                    if a.startswith("--flagfile="))
    mount = next(m for m in container["volumeMounts"]
                 if flagfile.startswith(m["mountPath"] + "/"))
    volume = next(v for v in workload["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert flagfile == f"{mount['mountPath']}/flags"
  # The learner's queue is sized for the actors there are.
  replicas = _one("StatefulSet", "actor")["spec"]["replicas"]
  assert f"--num_actors={replicas}" in flags


def test_only_this_runs_actors_reach_the_learners_port():
  policies = [o for o in _objects() if o["kind"] == "NetworkPolicy"]
  deny = next(p for p in policies if p["spec"]["podSelector"] == {})
  assert deny["spec"]["policyTypes"] == ["Ingress"]
  assert "ingress" not in deny["spec"]  # Nothing is allowed in...
  (allow,) = [p for p in policies if p is not deny]
  learner = _one("StatefulSet", "learner")
  actors = _one("StatefulSet", "actor")
  learner_labels = learner["spec"]["template"]["metadata"]["labels"]
  actor_labels = actors["spec"]["template"]["metadata"]["labels"]
  # ...but the learner's port, from the actors of the same run only.
  assert _matches(allow["spec"]["podSelector"]["matchLabels"], learner_labels)
  assert not _matches(allow["spec"]["podSelector"]["matchLabels"],
                      actor_labels)
  (rule,) = allow["spec"]["ingress"]
  (source,) = rule["from"]
  assert set(source) == {"podSelector"}  # No namespace or IP block.
  assert _matches(source["podSelector"]["matchLabels"], actor_labels)
  assert not _matches(source["podSelector"]["matchLabels"], learner_labels)
  assert source["podSelector"]["matchLabels"][
      "app.kubernetes.io/instance"] == learner_labels[
          "app.kubernetes.io/instance"]
  (port,) = rule["ports"]
  (container_port,) = _container(learner)["ports"]
  assert (port["protocol"], port["port"]) == ("TCP",
                                             container_port["containerPort"])

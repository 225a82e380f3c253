"""Who can reach the production services (deploy/security-groups.json, deploy/load-balancer.json,
CloudFormation): the templates are valid (cfn-lint, with AWS's resource schemas), nothing but
the load balancer accepts traffic from the internet, the UI's port only from the load balancer,
which signs every request in with OIDC before forwarding it, the code server's gRPC port only
from the webserver and the daemon with its run tasks, Postgres only from the Dagster tasks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cfnlint.api
import pytest
import yaml

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SG_FILE, LB_FILE = DEPLOY / "security-groups.json", DEPLOY / "load-balancer.json"
PUBLIC = {"0.0.0.0/0", "::/0"}
DAGSTER_TASKS = {"WebserverSecurityGroup", "DaemonSecurityGroup", "CodeServerSecurityGroup"}


def template(path: Path) -> dict:
    return json.loads(path.read_text())


def group_of(value) -> str:
    """Logical id of the security group a rule names ({"Fn::GetAtt": [id, "GroupId"]})."""
    assert set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "GroupId", value
    return value["Fn::GetAtt"][0]


def rules(direction: str) -> list[dict]:
    """Every ingress or egress rule, inline or a resource of its own, as {group, ports, source}."""
    resources = template(SG_FILE)["Resources"]
    inline_key, rule_type = {"in": ("SecurityGroupIngress", "AWS::EC2::SecurityGroupIngress"),
                             "out": ("SecurityGroupEgress", "AWS::EC2::SecurityGroupEgress")}[direction]
    peer_key = "SourceSecurityGroupId" if direction == "in" else "DestinationSecurityGroupId"
    found = []
    for name, resource in resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            found += [{"group": name, **rule} for rule in props.get(inline_key, [])]
        elif resource["Type"] == rule_type:
            found.append({"group": group_of(props["GroupId"]),
                          **{k: v for k, v in props.items() if k != "GroupId"}})
    for rule in found:
        rule["ports"] = (rule.get("FromPort"), rule.get("ToPort"))
        rule["peer"] = (group_of(rule[peer_key]) if peer_key in rule
                        else rule.get("CidrIp") or rule.get("CidrIpv6"))
    return found


def sources(group: str, port: int) -> set[str]:
    return {r["peer"] for r in rules("in") if r["group"] == group and r["ports"] == (port, port)}


def grpc_port() -> int:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    return workspace["load_from"][0]["grpc_server"]["port"]


def webserver_port() -> int:
    return template(LB_FILE)["Resources"]["WebserverTargets"]["Properties"]["Port"]


@pytest.mark.parametrize("path", [SG_FILE, LB_FILE], ids=lambda p: p.name)
def test_the_templates_are_valid_cloudformation(path):
    problems = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in cfnlint.api.lint_file(path)]
    assert problems == []


def test_only_the_load_balancer_accepts_the_internet_and_only_on_https_and_its_redirect():
    public = [r for r in rules("in") if r["peer"] in PUBLIC]
    assert {r["group"] for r in public} == {"AlbSecurityGroup"}
    assert {r["ports"] for r in public} == {(443, 443), (80, 80)}
    # No address range anywhere else: the tasks and the database accept only security groups.
    groups = {n for n, r in template(SG_FILE)["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroup"}
    assert all(r["peer"] in groups for r in rules("in") if r["group"] != "AlbSecurityGroup")
    assert all(r["IpProtocol"] == "tcp" and r["FromPort"] == r["ToPort"] for r in rules("in"))


def test_the_ui_port_is_open_to_the_load_balancer_only():
    port = webserver_port()
    assert sources("WebserverSecurityGroup", port) == {"AlbSecurityGroup"}
    assert {r["ports"] for r in rules("in") if r["group"] == "WebserverSecurityGroup"} == {(port, port)}
    assert any(r["group"] == "AlbSecurityGroup" and r["peer"] == "WebserverSecurityGroup"
               and r["ports"] == (port, port) for r in rules("out"))


def test_the_grpc_port_is_open_to_the_webserver_the_daemon_and_run_tasks_only():
    port = grpc_port()
    assert port == 4000
    assert sources("CodeServerSecurityGroup", port) == {"WebserverSecurityGroup", "DaemonSecurityGroup"}
    assert {r["ports"] for r in rules("in") if r["group"] == "CodeServerSecurityGroup"} == {(port, port)}
    # Run tasks get the launching daemon's network configuration, so its group.
    description = template(SG_FILE)["Resources"]["DaemonSecurityGroup"]["Properties"]["GroupDescription"]
    assert "run tasks" in description


def test_postgres_accepts_the_dagster_tasks_only_and_nothing_else_is_open():
    assert sources("DatabaseSecurityGroup", 5432) == DAGSTER_TASKS
    assert {r["group"] for r in rules("in")} == {"AlbSecurityGroup", "WebserverSecurityGroup",
                                                 "CodeServerSecurityGroup", "DatabaseSecurityGroup"}


def test_every_group_has_explicit_egress_so_none_keeps_the_default_allow_all():
    resources = template(SG_FILE)["Resources"]
    groups = [n for n, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroup"]
    assert all(resources[n]["Properties"].get("SecurityGroupEgress") for n in groups)
    assert not [r for r in rules("out") if r["IpProtocol"] == "-1" and r["peer"] in PUBLIC]


def listeners() -> dict[int, dict]:
    resources = template(LB_FILE)["Resources"]
    return {r["Properties"]["Port"]: r["Properties"] for r in resources.values()
            if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"}


def test_https_signs_in_with_oidc_before_forwarding_to_the_webserver():
    https = listeners()[443]
    assert https["Protocol"] == "HTTPS" and https["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    actions = sorted(https["DefaultActions"], key=lambda a: a["Order"])
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    oidc = actions[0]["AuthenticateOidcConfig"]
    assert oidc["OnUnauthenticatedRequest"] == "authenticate"
    assert "openid" in oidc["Scope"].split()
    # The client secret is resolved from Secrets Manager at deploy time, never written here.
    assert re.fullmatch(r"\{\{resolve:secretsmanager:\$\{\w+\}:SecretString:\w+\}\}",
                        oidc["ClientSecret"]["Fn::Sub"])
    assert actions[1]["TargetGroupArn"] == {"Ref": "WebserverTargets"}
    # No listener rule anywhere lets a path skip the sign-in.
    types = {r["Type"] for r in template(LB_FILE)["Resources"].values()}
    assert "AWS::ElasticLoadBalancingV2::ListenerRule" not in types


def test_http_only_redirects_to_https():
    http = listeners()[80]
    assert http["Protocol"] == "HTTP"
    [action] = http["DefaultActions"]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"]["Protocol"] == "HTTPS" and action["RedirectConfig"]["Port"] == "443"
    assert set(listeners()) == {80, 443}


def test_the_load_balancer_is_the_one_guarded_by_the_alb_group_and_in_public_subnets_only():
    lb = template(LB_FILE)["Resources"]["LoadBalancer"]["Properties"]
    assert lb["Type"] == "application" and lb["Subnets"] == {"Ref": "PublicSubnetIds"}
    [group] = lb["SecurityGroups"]
    exported = template(SG_FILE)["Outputs"]["AlbSecurityGroup"]["Export"]["Name"]["Fn::Sub"]
    assert group["Fn::ImportValue"]["Fn::Sub"] == exported.replace("AWS::StackName", "SecurityGroupsStack")
    targets = template(LB_FILE)["Resources"]["WebserverTargets"]["Properties"]
    assert targets["TargetType"] == "ip" and targets["Protocol"] == "HTTP"  # tasks' private IPs

"""The published OpenAPI document: a response schema for every JSON endpoint, the job spec as the request body
of POST /api/jobs, and every error status an endpoint answers declared with the error body."""

import pytest

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the document is the same on Postgres

# (method, path) -> error statuses it answers. Reads answer 401 with PRUNELAB_AUTH=tokens (429 to a client
# whose tokens failed too often), writes also 403; 422 wherever a parameter or body is validated.
READ = {401, 422, 429}
WRITE = {401, 403, 422, 429}
ERRORS = {
    ("post", "/api/jobs"): WRITE | {413, 429},
    ("get", "/api/jobs"): READ,
    ("get", "/api/jobs/{job_id}"): READ | {404},
    ("delete", "/api/jobs/{job_id}"): WRITE | {404},
    ("patch", "/api/jobs/{job_id}"): WRITE | {404},
    ("post", "/api/jobs/{job_id}/cancel"): WRITE | {404, 409},
    ("post", "/api/jobs/{job_id}/retry"): WRITE | {404, 409},
    ("get", "/api/jobs/{job_id}/steps"): READ | {404},
    ("get", "/api/jobs/{job_id}/layers/{layer}/mask"): READ | {404},
    ("get", "/api/jobs/{job_id}/export.csv"): READ | {404},
    ("get", "/api/jobs/{job_id}/export.json"): READ | {404},
    ("get", "/api/jobs/{job_id}/checkpoint"): READ | {403, 404},
    ("get", "/api/compare"): READ | {404},
    ("get", "/api/catalog"): READ,
    ("get", "/api/me"): READ,
    ("get", "/api/health"): set(),
    ("get", "/api/events"): READ,
    ("get", "/api/workers"): READ,
    ("get", "/api/jobs/{job_id}/sensitivity"): READ | {404, 409},
    ("get", "/api/jobs/{job_id}/allocation"): READ | {404, 409},
    ("post", "/api/groups"): WRITE | {413, 429},
    ("get", "/api/groups"): READ,
    ("get", "/api/groups/{group_id}"): READ | {404},
    ("post", "/api/jobs/{job_id}/steps/{step}/export"): WRITE | {404},  # and 503: the broker is down
    ("get", "/api/jobs/{job_id}/steps/{step}/export"): READ | {404},
}
NOT_JSON = {
    ("get", "/api/jobs/{job_id}/export.csv"): "text/csv",
    ("get", "/api/jobs/{job_id}/checkpoint"): "application/octet-stream",
    ("get", "/api/jobs/{job_id}/steps/{step}/export"): "application/octet-stream",
    ("get", "/api/events"): "text/event-stream",
}


@pytest.fixture
def openapi(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _deref(doc: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def operations(doc):
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            yield method, path, op


def test_every_operation_is_listed(openapi):
    published = {(m, p) for m, p, _ in operations(openapi)}
    assert published <= set(ERRORS), published - set(ERRORS)  # a new endpoint gets its expected errors here
    assert len(published) >= 16


def test_every_json_endpoint_has_a_response_schema(openapi):
    for method, path, op in operations(openapi):
        success = [code for code in op["responses"] if code in ("200", "201")]
        assert len(success) == 1, (method, path, list(op["responses"]))
        content = op["responses"][success[0]]["content"]
        if (method, path) in NOT_JSON:
            assert NOT_JSON[(method, path)] in content, (method, path, content)
            continue
        schema = content["application/json"]["schema"]
        assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, schema)
        model = _deref(openapi, schema)
        assert model["type"] == "object" and model["properties"], (method, path, model)


def test_error_statuses_are_declared_with_the_error_body(openapi):
    for method, path, op in operations(openapi):
        declared = {int(code) for code in op["responses"] if code.startswith("4")}
        assert declared == ERRORS[(method, path)], (method, path, sorted(declared))
        for code in declared:
            schema = op["responses"][str(code)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
    error = openapi["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["detail"]["type"] == "string"
    item = _deref(openapi, error["properties"]["errors"]["items"])
    assert set(item["properties"]) == {"field", "message", "allowed", "value"}
    assert "HTTPValidationError" not in openapi["components"]["schemas"]  # FastAPI's default 422 is replaced


def test_submit_body_is_the_job_spec(openapi):
    body = openapi["paths"]["/api/jobs"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/JobSpec"
    spec = openapi["components"]["schemas"]["JobSpec"]
    assert {"model", "dataset", "method", "schedule"} <= set(spec["required"])
    assert spec["additionalProperties"] is False
    rate = openapi["components"]["schemas"]["IterativeSchedule"]["properties"]["rate"]
    assert rate["type"] == "number" and rate["exclusiveMinimum"] == 0 and rate["exclusiveMaximum"] == 1


def test_token_schemes_are_published(openapi):
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {**schemes["HTTPBearer"], "type": "http", "scheme": "bearer"}
    assert schemes["APIKeyQuery"]["in"] == "query" and schemes["APIKeyQuery"]["name"] == "access_token"
    submit = openapi["paths"]["/api/jobs"]["post"]["security"]
    assert submit == [{"HTTPBearer": []}]  # writes never take the token from the query string


def test_unknown_route_and_method_answer_the_error_body(client):
    for r, status in ((client.get("/api/nothing-here"), 404), (client.put("/api/jobs"), 405)):
        assert r.status_code == status
        body = r.json()
        assert isinstance(body["detail"], str) and body["errors"][0]["message"] == body["detail"]

#!/usr/bin/env python3
"""Signs generated requests with botocore's own SigV4Auth and prints them as JSON, for the differential test
(Tests/AWSWireTests/SigV4Tests.swift). Usage: botocore_sign.py COUNT SEED."""
import datetime
import hashlib
import json
import random
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

count, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
alphabet = "abcXYZ019-_.~ /%+=&!*'()é"
out = []
fixed = datetime.datetime(2026, 11, 30, 12, 34, 56)
for i in range(count):
    service = rng.choice(["codedeploy", "codedeploy-commands", "s3"])
    method = rng.choice(["GET", "POST", "PUT", "HEAD", "DELETE"])
    segments = ["".join(rng.choice("abcXYZ019-_.~") for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(0, 3))]
    path = "/" + "/".join(segments)
    query = []
    for _ in range(rng.randint(0, 3)):
        key = "".join(rng.choice("abcXYZ019-_.~") for _ in range(rng.randint(1, 6)))
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        query.append((key, value))
    body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))).encode()
    headers = {"Host": "127.0.0.1:8443", "Content-Type": rng.choice(["application/x-amz-json-1.1", "application/octet-stream"])}
    if service.startswith("codedeploy"):
        headers["X-Amz-Target"] = "CodeDeploy_20141006.GetDeployment"
    if service == "s3":
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    if rng.random() < 0.3:
        headers["X-Custom-Spaces"] = "  a   b  c "
    url = "https://127.0.0.1:8443" + path
    request = AWSRequest(method=method, url=url, data=body, headers=headers, params=query)
    prepared_url = request.prepare().url
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = fixed
        dt.datetime.now.return_value = fixed
        dt.timezone = datetime.timezone
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), service, "us-east-1").add_auth(request)
    raw_path = prepared_url.split("://", 1)[1]
    raw_path = raw_path[raw_path.index("/"):] if "/" in raw_path else "/"
    path_only, _, query_string = raw_path.partition("?")
    out.append({
        "service": service, "method": method, "path": path_only, "query": query_string,
        "headers": [[k, v] for k, v in request.headers.items()],
        "body": body.decode(), "authorization": request.headers["Authorization"],
    })
print(json.dumps(out))

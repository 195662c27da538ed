"""The artifact store over S3: the real `aws s3 cp` (multipart, aws-chunked with CRC32 trailers, ranged parallel
downloads) and boto3, against `deployctl server`; S3's XML errors; what a client gets wrong changes nothing."""
import hashlib
import os

import botocore.exceptions
import pytest
import requests

from conftest import Server


def write_random(path, size):
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            f.write(chunk)
            remaining -= len(chunk)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_aws_s3_cp_of_100_mb_up_and_down_is_byte_identical(server):
    source = os.path.join(server.directory, "bundle.bin")
    back = os.path.join(server.directory, "back.bin")
    write_random(source, 100 * 1000 * 1000)
    up = server.aws("s3", "cp", source, "s3://releases/big/bundle.bin", "--only-show-errors")
    assert up.returncode == 0, up.stderr
    down = server.aws("s3", "cp", "s3://releases/big/bundle.bin", back, "--only-show-errors")
    assert down.returncode == 0, down.stderr
    assert digest(back) == digest(source)
    listing = server.aws("s3", "ls", "s3://releases/big/")
    assert "100000000 bundle.bin" in listing.stdout, listing.stdout
    # It is the same store the local artifacts/ folder is: the version's content file has the same bytes.
    versions = os.path.join(server.directory, "artifacts", "releases", "big", "bundle.bin@v")
    latest = open(os.path.join(versions, "latest")).read().strip()
    assert digest(os.path.join(versions, latest, "content")) == digest(source)
    # Nothing is left in the upload folders.
    assert os.listdir(os.path.join(server.directory, "artifacts", ".incoming")) == []
    assert os.listdir(os.path.join(server.directory, "artifacts", ".uploads")) == []


def test_boto3_upload_download_list_head_delete(server):
    s3 = server.client("s3")
    source = os.path.join(server.directory, "app.zip")
    write_random(source, 20 * 1024 * 1024 + 17)
    s3.create_bucket(Bucket="apps")
    assert "apps" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.upload_file(source, "apps", "v1/app.zip")  # multipart above 8 MiB
    s3.put_object(Bucket="apps", Key="v1/notes.txt", Body=b"hello")
    head = s3.head_object(Bucket="apps", Key="v1/app.zip")
    assert head["ContentLength"] == os.path.getsize(source)
    assert head["ETag"] == f'"{digest(source)}"'
    first_version = head["VersionId"]
    target = os.path.join(server.directory, "download.zip")
    s3.download_file("apps", "v1/app.zip", target)
    assert digest(target) == digest(source)
    ranged = s3.get_object(Bucket="apps", Key="v1/notes.txt", Range="bytes=1-3")
    assert ranged["Body"].read() == b"ell" and ranged["ContentRange"] == "bytes 1-3/5"
    listed = s3.list_objects_v2(Bucket="apps", Prefix="v1/")
    assert [o["Key"] for o in listed["Contents"]] == ["v1/app.zip", "v1/notes.txt"]
    paged = s3.list_objects_v2(Bucket="apps", MaxKeys=1)
    assert paged["IsTruncated"] and len(paged["Contents"]) == 1
    rest = s3.list_objects_v2(Bucket="apps", MaxKeys=1, ContinuationToken=paged["NextContinuationToken"])
    assert rest["Contents"][0]["Key"] == "v1/notes.txt"
    rolled = s3.list_objects_v2(Bucket="apps", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["v1/"]
    # A new version; the old one is still there by versionId.
    s3.put_object(Bucket="apps", Key="v1/app.zip", Body=b"second")
    assert s3.get_object(Bucket="apps", Key="v1/app.zip")["Body"].read() == b"second"
    assert s3.get_object(Bucket="apps", Key="v1/app.zip", VersionId=first_version)["ContentLength"] == os.path.getsize(source)
    s3.delete_object(Bucket="apps", Key="v1/notes.txt")
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        s3.get_object(Bucket="apps", Key="v1/notes.txt")
    assert gone.value.response["Error"]["Code"] == "NoSuchKey"


def test_s3_errors_are_s3_xml_errors(server):
    s3 = server.client("s3")
    with pytest.raises(botocore.exceptions.ClientError) as bucket:
        s3.list_objects_v2(Bucket="no-such-bucket")
    assert bucket.value.response["Error"]["Code"] == "NoSuchBucket"
    s3.create_bucket(Bucket="errors")
    with pytest.raises(botocore.exceptions.ClientError) as version:
        s3.get_object(Bucket="errors", Key="k", VersionId="nope")
    assert version.value.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion")
    with pytest.raises(botocore.exceptions.ClientError) as upload:
        s3.upload_part(Bucket="errors", Key="k", UploadId="nosuchupload", PartNumber=1, Body=b"x")
    assert upload.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(botocore.exceptions.ClientError) as signature:
        server.client("s3", secret="wrong-secret-wrong-secret-000").list_buckets()
    assert signature.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        server.client("s3", key_id="AKIAUNKNOWNUNKNOWN00").list_buckets()
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    anonymous = requests.get(server.url + "/errors/k", verify=server.ca, timeout=30)
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    s3.put_object(Bucket="errors", Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as not_empty:
        s3.delete_bucket(Bucket="errors")
    assert not_empty.value.response["Error"]["Code"] == "BucketNotEmpty"


def test_a_body_that_does_not_match_its_declared_hash_is_not_stored(server):
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    key = server.keys["admin"]
    body = b"the bytes that were signed"
    request = botocore.awsrequest.AWSRequest(method="PUT", url=server.url + "/releases/tampered.zip", data=body)
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    response = requests.put(server.url + "/releases/tampered.zip", headers=headers, data=b"different bytes, same length!!",
                            verify=server.ca, timeout=30)
    assert response.status_code == 400 and "XAmzContentSHA256Mismatch" in response.text, response.text
    # A declared length longer than the body (a dropped upload) stores nothing either.
    with pytest.raises(botocore.exceptions.ClientError):
        server.client("s3").head_object(Bucket="releases", Key="tampered.zip")
    assert os.listdir(os.path.join(server.directory, "artifacts", ".incoming")) == []


def test_the_object_size_limit_is_enforced():
    s = Server(extra_args=("--max-object-size", str(1 << 20)))
    try:
        path = os.path.join(s.directory, "two-mib.bin")
        write_random(path, 2 << 20)
        result = s.aws("s3", "cp", path, "s3://releases/two-mib.bin", "--only-show-errors")
        assert result.returncode != 0 and "EntityTooLarge" in result.stderr, result.stderr
        assert s.aws("s3", "ls", "s3://releases/").stdout.strip() == ""
    finally:
        assert s.stop() == 0

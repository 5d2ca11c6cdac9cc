"""The stack's object store: SeaweedFS (master, volume, filer, S3 gateway) and its buckets."""

from __future__ import annotations

import json
import os

from infra.prodstack.common import Context, check_port_free, process, start
from infra.remotestack import MLFLOW_BUCKET, ZENML_BUCKET, seaweed_s3_config


def s3_client(ctx: Context):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=ctx.endpoints.s3_endpoint,
        aws_access_key_id=ctx.creds["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=ctx.creds["S3_SECRET_ACCESS_KEY"],
        region_name=ctx.endpoints.region,
        config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10),
    )


def seaweed_healthy(ctx: Context) -> bool:
    names = {b["Name"] for b in s3_client(ctx).list_buckets().get("Buckets", [])}
    return {ZENML_BUCKET, MLFLOW_BUCKET} <= names


def start_seaweedfs(ctx: Context) -> None:
    p = ctx.ports
    data = ctx.layout.data("seaweedfs")
    data.mkdir(parents=True, exist_ok=True)
    for port, what in ((p.s3, "s3"), (p.weed_master, "weed_master"), (p.weed_filer, "weed_filer")):
        check_port_free(port, what)
    config = ctx.layout.run / "s3.json"
    ctx.layout.run.mkdir(parents=True, exist_ok=True)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, json.dumps(seaweed_s3_config(ctx.creds)).encode())
    os.close(fd)
    argv = [
        ctx.bins["weed"],
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={p.weed_master}",
        f"-master.port.grpc={p.weed_master_grpc}",
        f"-volume.port={p.weed_volume}",
        f"-volume.port.grpc={p.weed_volume_grpc}",
        f"-filer.port={p.weed_filer}",
        f"-filer.port.grpc={p.weed_filer_grpc}",
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        # stop in seconds, not 10 + (no other volume server to hand over to)
        "-volume.preStopSeconds=1",
        "-s3",
        f"-s3.port={p.s3}",
        f"-s3.port.grpc={p.weed_s3_grpc}",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-iam=false",
    ]

    def buckets() -> bool:
        s3 = s3_client(ctx)
        names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in (ZENML_BUCKET, MLFLOW_BUCKET):
            if bucket not in names:
                s3.create_bucket(Bucket=bucket)
                ctx.echo(f"  seaweedfs: created bucket {bucket}")
        # a write and a read back: the volume server is up too
        s3.put_object(Bucket=ZENML_BUCKET, Key=".health", Body=b"ok")
        return s3.get_object(Bucket=ZENML_BUCKET, Key=".health")["Body"].read() == b"ok"

    start(ctx, "SeaweedFS", process(ctx.layout, "seaweedfs", argv, creds=ctx.creds), buckets)

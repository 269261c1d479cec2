"""
stowjson.py - helpers of the STOW-RS metadata + bulk data tests (t_web_stow_json*.py): a
DICOM JSON instance from a pydicom data set (pydicom's own Annex F encoder, an independent
implementation of the model) with large binary values moved to bulk data parts, and the
multipart/related body of such a request.
"""
import json

import web


def to_json(ds, base="http://client.example/bulk/", threshold=64):
    """-> (DICOM JSON dict, {uri: bytes}). Binary values over threshold bytes become
    BulkDataURIs (also inside sequences), smaller ones InlineBinary."""
    bulk = {}

    def handler(elem):
        uri = "%s%d/%08X" % (base, len(bulk), elem.tag)
        bulk[uri] = bytes(elem.value)
        return uri

    return ds.to_json_dict(bulk_data_threshold=threshold, bulk_data_element_handler=handler), bulk


def body(instances, bulk, boundary="mt-stow-json-7", meta_type="application/dicom+json",
         bulk_types=None, extra_parts=()):
    """multipart/related body: one metadata part (the JSON array, or raw bytes when
    instances is bytes), then one part per bulk URI (a list of bytes = several parts with the
    same Content-Location). -> (body, content type)"""
    meta = instances if isinstance(instances, bytes) else json.dumps(instances).encode()
    parts = [("Content-Type: %s" % meta_type, meta)]
    for uri, data in bulk.items():
        ct = (bulk_types or {}).get(uri, "application/octet-stream")
        for d in data if isinstance(data, list) else [data]:
            parts.append(("Content-Type: %s\r\nContent-Location: %s" % (ct, uri), d))
    parts.extend(extra_parts)
    out = b""
    for head, data in parts:
        out += b"--" + boundary.encode() + b"\r\n" + head.encode() + b"\r\n\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, 'multipart/related; type="application/dicom+json"; boundary=%s' % boundary


def post(node, path, instances, bulk, headers=None, **kw):
    b, ct = body(instances, bulk, **kw)
    h = dict(headers or web.ADMIN)
    h["Content-Type"] = ct
    h["Accept"] = "application/dicom+json"
    st, hd, resp = web.request(node, "POST", path, h, b)
    j = None
    if resp and hd.get("content-type", "").startswith("application/dicom+json"):
        j = json.loads(resp)
    return st, j, resp

#!/usr/bin/env python3
"""Generates the channel signature fixtures ONCE, independently of Payhook's Swift code.

Run from the repository root:
    python3 Tests/ChannelsTests/Fixtures/make_fixtures.py
Needs Python's `cryptography` (48.0.0 was used). Every key here is a throwaway test key.
The tests do NOT run this script; they read the files it wrote.
"""
import base64, datetime, hashlib, hmac, json, os, urllib.parse
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

OUT = os.path.dirname(os.path.abspath(__file__))

def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(OUT, name), mode) as f:
        f.write(data)

def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)

def pkcs8(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

def pkcs1(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())

def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

def rsa_sign(key, data, h=None):
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), h or hashes.SHA256())).decode()

# ---------------------------------------------------------------- Alipay
alipay_key = new_key()          # Alipay's own key: signs notifies and query responses
app_key = new_key()             # the merchant app's key: signs query requests
write("alipay_public.pem", spki(alipay_key))
write("alipay_private_pkcs8.pem", pkcs8(alipay_key))
write("app_private_pkcs1.pem", pkcs1(app_key))
write("app_public.pem", spki(app_key))
other_key = new_key()
write("other_public.pem", spki(other_key))

def alipay_form(params, charset, key, sign_type="RSA2"):
    """params: list of (key, str value). Sign content: drop sign/sign_type and empty values,
    sort by key, join k=v with & over the charset's bytes; body percent-encodes those bytes."""
    enc = "gbk" if charset == "gbk" else "utf-8"
    content = "&".join(f"{k}={v}" for k, v in sorted(params) if v != "").encode(enc)
    h = hashes.SHA1() if sign_type == "RSA" else hashes.SHA256()
    sign = rsa_sign(key, content, h)
    full = list(params) + [("sign", sign), ("sign_type", sign_type)]
    return "&".join(f"{urllib.parse.quote_plus(k)}={urllib.parse.quote_plus(v.encode(enc))}" for k, v in full)

def alipay_notify(charset, subject, sign_type="RSA2"):
    return [
        ("gmt_create", "2026-11-27 10:00:00"), ("charset", charset),
        ("seller_email", "shop@example.com"), ("subject", subject),
        ("buyer_id", "2088102122524333"), ("invoice_amount", "88.88"),
        ("notify_id", "2026112700222100001012345678901234"),
        ("fund_bill_list", '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]'),
        ("notify_type", "trade_status_sync"), ("trade_status", "TRADE_SUCCESS"),
        ("receipt_amount", "88.88"), ("app_id", "2021000000000001"),
        ("buyer_pay_amount", "88.88"), ("seller_id", "2088000000000001"),
        ("gmt_payment", "2026-11-27 10:00:05"), ("notify_time", "2026-11-27 10:00:06"),
        ("version", "1.0"), ("out_trade_no", "ORDER-20261127-0001"),
        ("total_amount", "88.88"), ("trade_no", "2026112722001400001000012345"),
        ("auth_app_id", "2021000000000001"), ("buyer_logon_id", "abc***@example.com"),
        ("point_amount", "0.00"), ("body", ""),
    ]

write("alipay_notify_utf8.form", alipay_form(alipay_notify("utf-8", "测试商品 Payhook #1"), "utf-8", alipay_key))
write("alipay_notify_gbk.form", alipay_form(alipay_notify("gbk", "测试商品 Payhook #1"), "gbk", alipay_key))
write("alipay_notify_rsa1.form", alipay_form(alipay_notify("utf-8", "sha1 notify"), "utf-8", alipay_key, "RSA"))
write("alipay_notify_wrong_key.form", alipay_form(alipay_notify("utf-8", "forged"), "utf-8", other_key))

def alipay_response(node, inner_json):
    sign = rsa_sign(alipay_key, inner_json.encode())
    # Key order and spacing as Alipay sends them: the signed text is the raw value text.
    return '{"%s":%s,"sign":"%s"}' % (node, inner_json, sign)

query_inner = ('{"code":"10000","msg":"Success","buyer_logon_id":"abc***@example.com",'
               '"buyer_pay_amount":"88.88","buyer_user_id":"2088102122524333",'
               '"invoice_amount":"88.88","out_trade_no":"ORDER-20261127-0001",'
               '"point_amount":"0.00","receipt_amount":"88.88","send_pay_date":"2026-11-27 10:00:05",'
               '"total_amount":"88.88","trade_no":"2026112722001400001000012345",'
               '"trade_status":"TRADE_SUCCESS","subject":"\\u6d4b\\u8bd5 {not} \\"json\\" [x]"}')
write("alipay_query_response.json", alipay_response("alipay_trade_query_response", query_inner))
not_exist_inner = ('{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST",'
                   '"sub_msg":"交易不存在","out_trade_no":"ORDER-MISSING"}')
write("alipay_query_not_exist.json", alipay_response("alipay_trade_query_response", not_exist_inner))

# ---------------------------------------------------------------- WeChat Pay v3
apiv3_key = "P4yh00kTestApiV3Key0123456789abc"   # 32 ASCII bytes
assert len(apiv3_key) == 32
write("wechat_apiv3.key", apiv3_key + "\n")
cert_key = new_key()
pubid_key = new_key()
merchant_key = new_key()
serial = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA test")])
now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(cert_key.public_key()).serial_number(serial)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .sign(cert_key, hashes.SHA256()))
write("wechat_platform_cert.pem", cert.public_bytes(serialization.Encoding.PEM))
write("wechat_platform_cert_private.pem", pkcs8(cert_key))
write("wechat_pubkey_id_public.pem", spki(pubid_key))
write("wechat_pubkey_id_private.pem", pkcs8(pubid_key))
write("wechat_merchant_private.pem", pkcs8(merchant_key))
write("wechat_merchant_public.pem", spki(merchant_key))
CERT_SERIAL = "%X" % serial
PUBKEY_ID = "PUB_KEY_ID_0114232134912410000000000000000001"

def wechat_notify(key, serial_name, trade_state, timestamp, nonce, resource_nonce):
    transaction = {
        "mchid": "1900000001", "appid": "wx0000000000000001",
        "out_trade_no": "ORDER-20261127-0002", "transaction_id": "4200001234202611270000000001",
        "trade_type": "JSAPI", "trade_state": trade_state, "trade_state_desc": "支付成功",
        "bank_type": "OTHERS", "attach": "", "success_time": "2026-11-27T10:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 8888, "payer_total": 8888, "currency": "CNY", "payer_currency": "CNY"},
    }
    plaintext = json.dumps(transaction, ensure_ascii=False, separators=(",", ":")).encode()
    ad = "transaction"
    ct = AESGCM(apiv3_key.encode()).encrypt(resource_nonce.encode(), plaintext, ad.encode())
    envelope = {
        "id": "EV-2026112710000500001", "create_time": "2026-11-27T10:00:06+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ct).decode(), "associated_data": ad,
                     "nonce": resource_nonce},
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    message = f"{timestamp}\n{nonce}\n{body}\n".encode()
    headers = {
        "Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(key, message), "Wechatpay-Serial": serial_name,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return json.dumps({"headers": headers, "body": body}, ensure_ascii=False, indent=1)

TS = 1795749606  # 2026-11-27T11:20:06+08:00
write("wechat_notify_cert.json", wechat_notify(cert_key, CERT_SERIAL, "SUCCESS", TS, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "fdasflkja484"))
write("wechat_notify_pubkey_id.json", wechat_notify(pubid_key, PUBKEY_ID, "SUCCESS", TS, "7H3JQ2W9KD0PX4ZB1N6RM8VT5YC2LE0A", "0123456789ab"))
write("wechat_notify_closed.json", wechat_notify(pubid_key, PUBKEY_ID, "CLOSED", TS, "Q8W7E6R5T4Y3U2I1O0P9A8S7D6F5G4H3", "ba9876543210"))
write("wechat_serials.json", json.dumps({"certificate_serial": CERT_SERIAL, "public_key_id": PUBKEY_ID}, indent=1))

# Query response as the channel answers GET /v3/pay/transactions/out-trade-no/{no}
query_tx = {"amount": {"currency": "CNY", "payer_currency": "CNY", "payer_total": 8888, "total": 8888},
            "appid": "wx0000000000000001", "mchid": "1900000001", "out_trade_no": "ORDER-20261127-0002",
            "transaction_id": "4200001234202611270000000001", "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功", "success_time": "2026-11-27T10:00:05+08:00", "trade_type": "JSAPI"}
qbody = json.dumps(query_tx, ensure_ascii=False, separators=(",", ":"))
qnonce = "QUERYNONCE0123456789ABCDEFGHIJKL"
write("wechat_query_response.json", json.dumps({"status": 200, "headers": {
    "Wechatpay-Timestamp": str(TS), "Wechatpay-Nonce": qnonce,
    "Wechatpay-Signature": rsa_sign(pubid_key, f"{TS}\n{qnonce}\n{qbody}\n".encode()),
    "Wechatpay-Serial": PUBKEY_ID, "Request-ID": "08F0A1B2C3D4E5F6"}, "body": qbody},
    ensure_ascii=False, indent=1))

# ---------------------------------------------------------------- Points partner
secret = "points-test-secret-3f9a1c7e5b2d4086"
write("points.secret", secret + "\n")
pbody = json.dumps({"event_id": "PEV-20261127-000001", "event_type": "PAYMENT.SUCCEEDED",
                    "partner_id": "site-001", "out_trade_no": "ORDER-20261127-0003",
                    "points_trade_no": "PT202611270000000001", "status": "PAID",
                    "amount": "88.88", "currency": "CNY", "points": 8888,
                    "paid_at": "2026-11-27T10:00:05+08:00"}, separators=(",", ":"))
pnonce = "pn-7d1e0c9b8a6f5e4d"
psig = hmac.new(secret.encode(), f"{TS}\n{pnonce}\n{pbody}\n".encode(), hashlib.sha256).hexdigest()
write("points_notify.json", json.dumps({"headers": {
    "X-Points-Partner-Id": "site-001", "X-Points-Timestamp": str(TS), "X-Points-Nonce": pnonce,
    "X-Points-Signature": psig, "X-Points-Signature-Type": "HMAC-SHA256"}, "body": pbody}, indent=1))

#!/usr/bin/env python3
"""Generates the channel signature fixtures ONCE, independently of Payhook's Swift code.

Run from the repository root:
    python3 Tests/ChannelsTests/Fixtures/make_fixtures.py           # everything, NEW keys
    python3 Tests/ChannelsTests/Fixtures/make_fixtures.py --orders  # only the order-creation
        vectors, signed with the keys already in this folder (nothing else is touched)
Needs Python's `cryptography` (48.0.0 was used). Every key here is a throwaway test key.
The tests do NOT run this script; they read the files it wrote.
"""
import base64, datetime, hashlib, hmac, json, os, sys, urllib.parse
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

# ---------------------------------------------------------------- Order creation (--orders)
def make_orders():
    """Order-creation vectors from the EXISTING keys; see Notes wire-spec (Alipay, WeChat Pay
    v3, points v2). Fixed time TS = 1795749606 (2026-11-27 11:20:06 +08:00)."""
    def load(name):
        with open(os.path.join(OUT, name), "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    app_key = load("app_private_pkcs1.pem")            # signs Alipay requests
    alipay_key = load("alipay_private_pkcs8.pem")      # signs Alipay answers
    merchant_key = load("wechat_merchant_private.pem") # signs WeChat requests, paySign, sign
    platform_key = load("wechat_pubkey_id_private.pem")  # signs WeChat answers
    with open(os.path.join(OUT, "points.secret")) as f:
        secret = f.read().strip()
    ts = 1795749606
    expires = ts + 900
    def beijing(t, fmt):
        return datetime.datetime.fromtimestamp(t, datetime.timezone(datetime.timedelta(hours=8))).strftime(fmt)
    alipay_time = lambda t: beijing(t, "%Y-%m-%d %H:%M:%S")
    rfc3339 = lambda t: beijing(t, "%Y-%m-%dT%H:%M:%S+08:00")
    compact = lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    def form_enc(v):
        # java.net.URLEncoder: unreserved A-Z a-z 0-9 - . _ *, space as +, the rest %XX of UTF-8.
        return urllib.parse.quote_plus(v.encode(), safe="*").replace("~", "%7E")
    def dump(name, obj):
        write(name, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")

    # ---- Alipay: page.pay, app.pay, precreate (requests) and precreate/close answers
    gateway = "http://127.0.0.1:1/gateway.do"
    no = "PH20261127ABCDEFGH23456789"
    subject = '测试 <Payhook> & "1"'
    def alipay_request(method, biz, return_url=None):
        params = [("app_id", "2021000000000001"), ("method", method), ("format", "JSON"), ("charset", "utf-8"),
                  ("sign_type", "RSA2"), ("timestamp", alipay_time(ts)), ("version", "1.0"),
                  ("notify_url", "https://pay.example.com/notify/alipay")]
        if return_url:
            params.append(("return_url", return_url))
        params.append(("biz_content", compact(biz)))
        # Requests: every param sent but sign and empty values, sign_type INCLUDED, sorted, raw values.
        content = "&".join(f"{k}={v}" for k, v in sorted(params) if v != "")
        sign = rsa_sign(app_key, content.encode())
        full = params + [("sign", sign)]
        encoded = "&".join(f"{form_enc(k)}={form_enc(v)}" for k, v in full)
        return {"params": [[k, v] for k, v in full], "sign_content": content, "sign": sign, "encoded": encoded}
    passback = form_enc("a=1&b=two words")
    page_biz = {"out_trade_no": no, "total_amount": "88.88", "subject": subject, "product_code": "FAST_INSTANT_TRADE_PAY",
                "body": "Payhook order body", "time_expire": alipay_time(expires), "passback_params": passback}
    page = alipay_request("alipay.trade.page.pay", page_biz, "https://pay.example.com/return/alipay")
    page["pay_url"] = gateway + "?" + page.pop("encoded")
    dump("alipay_page_pay_request.json", page)
    app_biz = {"out_trade_no": no, "total_amount": "88.88", "subject": subject, "product_code": "QUICK_MSECURITY_PAY"}
    app = alipay_request("alipay.trade.app.pay", app_biz)
    app["order_string"] = app.pop("encoded")
    dump("alipay_app_pay_request.json", app)
    pre_biz = {"out_trade_no": no, "total_amount": "88.88", "subject": subject}
    pre = alipay_request("alipay.trade.precreate", pre_biz)
    pre["body"] = pre.pop("encoded")
    dump("alipay_precreate_request.json", pre)

    def alipay_answer(node, inner):
        return '{"%s":%s,"sign":"%s"}' % (node, inner, rsa_sign(alipay_key, inner.encode()))
    write("alipay_precreate_response.json", alipay_answer("alipay_trade_precreate_response",
        '{"code":"10000","msg":"Success","out_trade_no":"%s","qr_code":"https://qr.alipay.com/bax03431ljhokirwl38f00a7"}' % no))
    write("alipay_close_response.json", alipay_answer("alipay_trade_close_response",
        '{"code":"10000","msg":"Success","trade_no":"2026112722001400001000099999","out_trade_no":"%s"}' % no))
    write("alipay_close_not_exist.json", alipay_answer("alipay_trade_close_response",
        '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}'))
    write("alipay_close_status_error.json", alipay_answer("alipay_trade_close_response",
        '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"交易状态不合法"}'))

    # ---- WeChat Pay v3: jsapi and h5 prepay requests, the prepay answer, front-end signatures, close answers
    mchid, appid, serial_no = "1900000001", "wx0000000000000001", "0000000000000000000000000000000000000001"
    wno = "PH20261127WECHAT234567"
    def prepay_body(extra):
        body = {"appid": appid, "mchid": mchid, "description": '测试商品 "jsapi"', "out_trade_no": wno,
                "time_expire": rfc3339(expires), "attach": "site-order-42",
                "notify_url": "https://pay.example.com/notify/wechatpay", "amount": {"total": 8888, "currency": "CNY"}}
        body.update(extra)
        return compact(body)
    def authorization(method, target, body, nonce):
        signature = rsa_sign(merchant_key, f"{method}\n{target}\n{ts}\n{nonce}\n{body}\n".encode())
        header = (f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
                  f'timestamp="{ts}",serial_no="{serial_no}"')
        return {"target": target, "body": body, "nonce": nonce, "signature": signature, "authorization": header}
    jsapi = authorization("POST", "/v3/pay/transactions/jsapi",
                          prepay_body({"payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}), "PREPAYNONCE0123456789ABCDEFGHIJK")
    h5 = authorization("POST", "/v3/pay/transactions/h5",
                       prepay_body({"scene_info": {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}}),
                       "H5NONCE0123456789ABCDEFGHIJKLMN")
    dump("wechat_prepay_requests.json", {"timestamp": ts, "jsapi": jsapi, "h5": h5})

    def signed_answer(status, body, nonce):
        return {"status": status, "headers": {
            "Wechatpay-Timestamp": str(ts), "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(platform_key, f"{ts}\n{nonce}\n{body}\n".encode()),
            "Wechatpay-Serial": PUBKEY_ID_FIXED, "Request-ID": "08F0A1B2C3D4E5F7"}, "body": body}
    prepay_id = "wx27112006123456789abcdef0123456789"
    front_nonce = "FRONTNONCE0123456789ABCDEFGHIJKL"
    package = "prepay_id=" + prepay_id
    dump("wechat_prepay_response.json", signed_answer(200, compact({"prepay_id": prepay_id}), "ANSWERNONCE0123456789ABCDEFGHIJ"))
    dump("wechat_front_end.json", {
        "timestamp": str(ts), "nonce": front_nonce, "prepay_id": prepay_id,
        "jsapi": {"appId": appid, "timeStamp": str(ts), "nonceStr": front_nonce, "package": package, "signType": "RSA",
                  "paySign": rsa_sign(merchant_key, f"{appid}\n{ts}\n{front_nonce}\n{package}\n".encode())},
        "app": {"appid": appid, "partnerid": mchid, "prepayid": prepay_id, "package": "Sign=WXPay", "noncestr": front_nonce,
                "timestamp": str(ts), "sign": rsa_sign(merchant_key, f"{appid}\n{ts}\n{front_nonce}\n{prepay_id}\n".encode())}})
    dump("wechat_close_responses.json", {
        "closed": signed_answer(204, "", "CLOSENONCE0123456789ABCDEFGHIJKL"),
        "order_closed": signed_answer(400, compact({"code": "ORDER_CLOSED", "message": "订单已关闭"}), "CLOSENONCE1123456789ABCDEFGHIJKL"),
        "order_paid": signed_answer(400, compact({"code": "ORDER_PAID", "message": "订单已支付"}), "CLOSENONCE2123456789ABCDEFGHIJKL"),
        "not_exist": signed_answer(404, compact({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}), "CLOSENONCE3123456789ABCDEFGHIJKL")})

    # ---- Points partner v2: deduct and reverse requests, a PAID deduct answer
    def hmac_hex(message):
        return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    pno = "PH20261127POINTS234567"
    deduct_body = compact({"partner_id": "site-001", "out_trade_no": pno, "user_id": "member-7781", "amount": "88.88",
                           "currency": "CNY", "subject": "积分抵扣 #1", "notify_url": "https://pay.example.com/notify/points",
                           "expires_at": rfc3339(expires)})
    deduct_nonce = "pd-0123456789abcdef"
    reverse_body = compact({"partner_id": "site-001", "out_trade_no": pno, "reverse_no": "RV-20261127-1", "amount": "10.00"})
    reverse_nonce = "pr-0123456789abcdef"
    reverse_target = f"/api/v2/deducts/{pno}/reverse"
    answer_body = compact({"partner_id": "site-001", "out_trade_no": pno, "points_trade_no": "PT2026112700000000042",
                           "status": "PAID", "amount": "88.88", "currency": "CNY", "points": 8888, "user_id": "member-7781",
                           "paid_at": rfc3339(ts + 1)})
    answer_nonce = "pa-0123456789abcdef"
    dump("points_v2.json", {
        "timestamp": ts, "api_base_url": "https://points.partner.example/api/",
        "deduct": {"target": "/api/v2/deducts", "body": deduct_body, "nonce": deduct_nonce,
                   "signature": hmac_hex(f"POST\n/api/v2/deducts\n{ts}\n{deduct_nonce}\n{deduct_body}\n")},
        "reverse": {"target": reverse_target, "body": reverse_body, "nonce": reverse_nonce,
                    "signature": hmac_hex(f"POST\n{reverse_target}\n{ts}\n{reverse_nonce}\n{reverse_body}\n")},
        "deduct_answer": {"status": 200, "headers": {
            "X-Points-Partner-Id": "site-001", "X-Points-Timestamp": str(ts), "X-Points-Nonce": answer_nonce,
            "X-Points-Signature": hmac_hex(f"{ts}\n{answer_nonce}\n{answer_body}\n"),
            "X-Points-Signature-Type": "HMAC-SHA256"}, "body": answer_body}})

PUBKEY_ID_FIXED = "PUB_KEY_ID_0114232134912410000000000000000001"

if __name__ == "__main__" and "--orders" in sys.argv:
    make_orders()
    sys.exit(0)

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

#!/usr/bin/env python3
"""Stores a login in a Thunderbird profile the way Thunderbird does.

usage: tb_login.py PROFILE ORIGIN USER PASSWORD

The profile's NSS databases (key4.db, made by `certutil -N --empty-password`)
hold the key; user name and password are encrypted with it by NSS's
SecretDecoderRing (PK11SDR_Encrypt, the call Thunderbird's login manager
uses) and written to PROFILE/logins.json. Thunderbird ignores passwords in
prefs and would otherwise wait on a hidden password prompt.
"""
import base64
import ctypes
import json
import sys
import time
import uuid


class SECItem(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint), ("data", ctypes.c_void_p), ("len", ctypes.c_uint)]


def main():
    profile, origin, user, password = sys.argv[1:5]
    nss = ctypes.CDLL("libnss3.so")
    nss.NSS_InitReadWrite.argtypes = [ctypes.c_char_p]
    if nss.NSS_InitReadWrite(("sql:" + profile).encode()) != 0:
        sys.exit("NSS_InitReadWrite failed for " + profile)
    nss.PK11_GetInternalKeySlot.restype = ctypes.c_void_p
    nss.PK11_Authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    nss.PK11SDR_Encrypt.argtypes = [ctypes.POINTER(SECItem)] * 3 + [ctypes.c_void_p]
    slot = nss.PK11_GetInternalKeySlot()
    if nss.PK11_Authenticate(ctypes.c_void_p(slot), 1, None) != 0:
        sys.exit("PK11_Authenticate failed (the key database has a password?)")

    def encrypt(text):
        buf = ctypes.create_string_buffer(text.encode(), len(text.encode()))
        data = SECItem(0, ctypes.cast(buf, ctypes.c_void_p), len(text.encode()))
        keyid = SECItem(0, None, 0)  # the default key, made on first use
        out = SECItem(0, None, 0)
        if nss.PK11SDR_Encrypt(ctypes.byref(keyid), ctypes.byref(data), ctypes.byref(out), None) != 0:
            sys.exit("PK11SDR_Encrypt failed")
        return base64.b64encode(ctypes.string_at(out.data, out.len)).decode()

    now = int(time.time() * 1000)
    login = {
        "id": 1,
        "hostname": origin,
        "httpRealm": origin,
        "formSubmitURL": None,
        "usernameField": "",
        "passwordField": "",
        "encryptedUsername": encrypt(user),
        "encryptedPassword": encrypt(password),
        "guid": "{%s}" % uuid.uuid4(),
        "encType": 1,
        "timeCreated": now,
        "timeLastUsed": now,
        "timePasswordChanged": now,
        "timesUsed": 1,
    }
    doc = {"nextId": 2, "logins": [login], "potentiallyVulnerablePasswords": [],
           "dismissedBreachAlertsByLoginGUID": {}, "version": 3}
    with open(profile + "/logins.json", "w") as f:
        json.dump(doc, f)
    nss.NSS_Shutdown()


main()

from payments.gateway import Card


def card(number="4111111111111111", **overrides) -> Card:
    fields = {"number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123", "holder_name": "Ada Lovelace"}
    return Card(**{**fields, **overrides})

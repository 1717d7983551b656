from rest_framework import serializers

from hashinsight.accounts.models import ApiToken, User
from hashinsight.accounts.roles import Module, access_for


class MeSerializer(serializers.ModelSerializer):
    access = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role", "language", "access", "last_login"]
        read_only_fields = ["id", "username", "role", "access", "last_login"]

    def get_access(self, user) -> dict:
        return {m.value: access_for(user, m).name for m in Module}


class UserSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "language",
            "is_active",
            "last_login",
            "date_joined",
            "password",
        ]
        read_only_fields = ["id", "is_active", "last_login", "date_joined"]
        # The model's default (GUEST) is no choice for an account an admin creates; the service needs one.
        extra_kwargs = {"role": {"required": True}}

    def validate(self, attrs):
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": "A password is required for a new user."})
        return attrs


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "created_at", "last_used_at", "expires_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The full token. Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]

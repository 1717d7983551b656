// django-celery-beat's periodic task form (templates/admin/djcelery/change_periodictask_form.html): the
// chosen crontab is also shown in words under the field. Was an inline script in the package's template.
(function () {
  "use strict";
  const $ = window.django && window.django.jQuery;
  const data = document.getElementById("readable-crontabs");
  if (!$ || !data) return;
  const readable = JSON.parse(data.textContent);
  const original = document.getElementById("crontab-help-original").textContent;
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    const help = $(".field-crontab .help");
    help.text(original);
    help.append(document.createElement("br"));
    help.append(document.createTextNode("Translation: " + (readable[$("#id_crontab").val()] || "")));
  });
})();

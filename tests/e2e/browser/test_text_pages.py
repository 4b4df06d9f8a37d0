"""Text datasets and vocabularies in a real browser: typed samples, a refusal in place, a sample added, a network
from a template, tokens added and a special one kept."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect


def test_create_a_text_dataset_from_typed_samples_and_use_it(page, web_server, page_problems):
    page_problems.allow("400 POST")
    name = f"reviews-{uuid.uuid4().hex[:6]}"
    page.goto("/datasets")
    form = page.locator("#text-form")
    form.locator("#text-kind").select_option("binary_classification")
    expect(form.locator('[data-field="columns"]')).to_have_text("text,label")
    form.locator('input[name="source"][value="typed"]').check()
    # one label only: the server's message appears in the form
    form.locator("#text-samples").fill("text,label\ngood,1\nfine,1\nnice,1\n")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".form-error")).to_contain_text("exactly two labels")
    rows = "\n".join(f"{'a great film' if i % 2 else 'a dull film'} {i},{i % 2}" for i in range(12))
    form.locator("#text-samples").fill("text,label\n" + rows)
    form.locator("#text-name").fill(name)
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f]{12}$"))
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("#text-facts")).to_contain_text("words")
    # a sample, then a network from the default template
    sample = page.locator("#sample-form")
    sample.locator("#sample-text").fill("a great great film")
    sample.locator("#sample-label").fill("1")
    sample.locator('button[type="submit"]').click()
    expect(page.locator(".dataset-summary")).to_contain_text("13")
    page.locator('#template-form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/networks/[0-9a-f]{12}$"))


def test_a_vocabulary_page_adds_tokens_and_keeps_the_specials(page, web_server):
    made = web_server.api.post("/api/vocabularies", {"name": f"v-{uuid.uuid4().hex[:6]}", "level": "word"},
                               expect=201)
    page.goto(f"/vocabularies/{made['id']}")
    expect(page.locator('#token-rows tr[data-token-id="0"]')).to_contain_text("<pad>")
    expect(page.locator('#token-rows tr[data-token-id="0"] button')).to_have_count(0)  # no delete for a special
    page.locator("#add-tokens").fill("cat 42 ?")
    page.locator('#add-tokens-form button[type="submit"]').click()
    expect(page.locator('#token-rows tr[data-token-id="6"]')).to_contain_text("numeric")
    page.locator('#token-rows tr[data-token-id="5"] button').click()
    expect(page.locator('#token-rows tr[data-token-id="5"]')).to_have_count(0)

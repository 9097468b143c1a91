"""A real browser pays an Alipay page-pay order made through the site API.

Debian's Chromium, headless, driven by Selenium with Debian's chromedriver: create the order
with POST /v1/orders, open its pay_url (the simulated Alipay cashier), press Pay, land on
Payhook's return page, wait until it says "Paid", and check the order is paid in the
database. A screenshot of each page goes to SCREENSHOTS (git-ignored).

Usage: python3 cashier_test.py API_URL TOKEN_FILE DATABASE_URL SCREENSHOTS
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def create_order(api, token, body):
    request = urllib.request.Request(
        api + "/v1/orders", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status
        return json.load(response)


def order_status(database_url, out_trade_no):
    return subprocess.run(
        ["psql", "-At", database_url, "-c", "SELECT status FROM orders WHERE out_trade_no = '%s'" % out_trade_no],
        check=True, capture_output=True, text=True).stdout.strip()


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
        options.add_argument(argument)
    # Debian's driver, never a download (these machines have no network).
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    api, token_file, database_url, screenshots = sys.argv[1:5]
    os.makedirs(screenshots, exist_ok=True)
    token = open(token_file).read().strip()
    out_trade_no = "BROWSER_%d" % int(time.time() * 1000)
    created = create_order(api, token, {
        "out_trade_no": out_trade_no, "channel": "alipay", "scene": "page", "amount": "12.34",
        "subject": "Browser test tea", "return_url": "https://shop.example/thanks"})
    assert created["order"]["status"] == "created"
    pay_url = created["pay"]["pay_url"]
    assert order_status(database_url, out_trade_no) == "created"

    driver = browser()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(pay_url)
        pay = wait.until(expected_conditions.element_to_be_clickable((By.ID, "pay")))
        assert "12.34" in driver.page_source, "the cashier shows the amount"
        driver.save_screenshot(os.path.join(screenshots, "1-cashier.png"))
        pay.click()
        # Payhook's return page: "Being confirmed" until the notify is applied, then "Paid".
        wait.until(lambda d: "/return/alipay" in d.current_url)
        driver.save_screenshot(os.path.join(screenshots, "2-return.png"))
        wait.until(lambda d: d.find_element(By.ID, "status").text == "Paid")
        assert out_trade_no in driver.find_element(By.ID, "order").text
        link = driver.find_element(By.ID, "continue").get_attribute("href")
        assert link == "https://shop.example/thanks", link
        driver.save_screenshot(os.path.join(screenshots, "3-paid.png"))
    finally:
        driver.quit()
    assert order_status(database_url, out_trade_no) == "paid"
    print("browser: order %s paid through the simulated cashier; screenshots in %s" % (out_trade_no, screenshots))


if __name__ == "__main__":
    main()
